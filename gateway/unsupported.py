"""What to say about a call artgw does not answer: which MLflow feature it belongs to.

MLflow's client reports the message of a 404 ENDPOINT_NOT_FOUND, so a user who calls, say,
`mlflow.start_span` or `mlflow.genai.register_prompt` against artgw reads which feature is not
provided instead of a bare "no endpoint".
"""

import re

FEATURES: tuple[tuple[str, str], ...] = (
    (r"traces|unified-traces|get-online-trace-details|get-trace-artifact", "GenAI tracing"),
    (r"prompts|prompt-optimization|runs/create-promptlab-run", "prompts and prompt optimization"),
    (r"scorers|datasets|issues|label-schemas|review-queues", "GenAI evaluation"),
    (r"gateway|gateway-proxy|endpoints|secrets", "the AI Gateway"),
    (r"webhooks", "webhooks"),
    (r"workspaces", "workspaces"),
    (r"jobs", "server-side jobs"),
    (r"artifacts/presigned-(upload|download)-url", "Databricks presigned artifact URLs"),
    (r"users|permissions|roles", "authentication and permissions"),
)
_API = re.compile(r"^/(?:ajax-)?api/\d+\.\d+/mlflow/(?P<rest>.*)$")


def feature_of(path: str) -> str | None:
    """The MLflow feature a request path belongs to, when artgw knows it does not provide it."""
    if path.rstrip("/") in ("/graphql", "/ajax-api/graphql"):
        return "the web UI's GraphQL API"
    match = _API.match(path)
    if match is None:
        return None
    rest = match["rest"]
    for pattern, feature in FEATURES:
        if re.match(rf"(?:{pattern})(?:/|$)", rest):
            return feature
    return None


def not_found_message(method: str, path: str) -> str:
    base = f"No endpoint {method} {path}"
    feature = feature_of(path)
    if feature is not None:
        return (
            f"{base}: it belongs to {feature}, an MLflow feature that artgw does not provide "
            "(the README lists what works with the stock client)."
        )
    if _API.match(path):
        return f"{base}: artgw does not provide this MLflow API call."
    return base
