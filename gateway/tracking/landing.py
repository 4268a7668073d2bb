"""The tracking module's part of the landing page: recent experiments, each with its recent runs
linked to their artifact listings."""

from urllib.parse import quote, urlsplit

from aiohttp import web

from gateway.tracking.keys import STORE
from gateway.web.landing import Link, Section, artifact_listing_href
from tracking import uris
from tracking.store import Run, Search

MAX_EXPERIMENTS = 20
MAX_RUNS = 20
"""Per experiment; the landing page is not paginated."""


async def experiment_sections(app: web.Application) -> list[Section]:
    store = app[STORE]
    experiments = await store.search_experiments(Search(max_results=MAX_EXPERIMENTS))
    sections = []
    for experiment in experiments.items:
        query = Search(experiment_ids=(experiment.experiment_id,), max_results=MAX_RUNS)
        runs = await store.search_runs(query)
        links = [Link(run.info.run_name, run_href(run), run.info.status) for run in runs.items]
        title = f"Experiment {experiment.name} ({experiment.experiment_id})"
        sections.append(Section(title, links, empty="No runs yet."))
    return sections


def run_href(run: Run) -> str:
    """This server's listing for `mlflow-artifacts:/...`; the artifact server's own listing for an
    http(s) artifact URI (the split setup); the run's JSON when its artifacts are elsewhere."""
    uri = run.info.artifact_uri
    path, split = uris.destination_path(uri), urlsplit(uri)
    if path is not None and split.scheme == uris.PROXY_SCHEME and not split.netloc:
        return artifact_listing_href(path)
    if path is not None and split.scheme in ("http", "https"):
        return uri.rstrip("/") + "/"
    return f"api/2.0/mlflow/runs/get?run_id={quote(run.info.run_id)}"
