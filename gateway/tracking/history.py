"""Metric histories of many runs at once, as MLflow's UI asks for them:
`metrics/get-history-bulk` and `metrics/get-history-bulk-interval` (API-TRACKING.md F)."""

import math
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.artifacts import json_response
from gateway.errors import InvalidParameter
from gateway.tracking import wire
from gateway.tracking.keys import STORE
from gateway.tracking.validation import (
    Spec,
    bounded,
    integer,
    listed,
    one_to,
    request_fields,
    string,
)
from tracking.store import Metric

MAX_BULK_RESULTS = 25000
MAX_BULK_RUNS = 100
MAX_RESULTS_PER_RUN = 2500


def _sort_key(m: Metric) -> tuple:
    nan = math.isnan(m.value)
    return (m.step, m.timestamp, 0.0 if nan else m.value, nan)


def sample(points: Sequence[Metric], max_results: int) -> list[Metric]:
    """MLflow 3.17's sampling: the first point of each of `max_results` equal buckets (NTILE)
    over the points ordered by step, timestamp, value; the last point always kept."""
    ordered = sorted(points, key=_sort_key)
    count = len(ordered)
    if count <= max_results:
        return ordered
    size, bigger = divmod(count, max_results)
    starts, start = [], 0
    for bucket in range(max_results):
        starts.append(start)
        start += size + (1 if bucket < bigger else 0)
    chosen = [ordered[i] for i in starts]
    if chosen[-1] is not ordered[-1]:
        chosen[-1] = ordered[-1]
    return chosen


def with_run_id(m: Metric, run_id: str) -> dict:
    return {**wire.metric(m), "run_id": run_id}


async def get_history_bulk(request: web.Request) -> web.Response:
    schema = {
        "run_id": listed(string),
        "metric_key": Spec(string),
        "max_results": Spec(integer),
    }
    fields = await request_fields(request, schema)
    run_ids = one_to(MAX_BULK_RUNS, fields.get("run_id", []), "GetMetricHistoryBulk", "run_id")
    if "metric_key" not in fields:
        raise InvalidParameter("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = max(1, min(fields.get("max_results", MAX_BULK_RESULTS), MAX_BULK_RESULTS))
    metrics: list[dict] = []
    for run_id in sorted(set(run_ids)):
        page = await request.app[STORE].get_metric_history(
            run_id, fields["metric_key"], max_results, 0
        )
        points = sorted(page.items, key=lambda m: (m.timestamp, m.step, m.value))
        metrics.extend(with_run_id(m, run_id) for m in points)
    return json_response({"metrics": metrics[:max_results]} if metrics else {})


async def get_history_bulk_interval(request: web.Request) -> web.Response:
    schema = {
        "run_ids": listed(string, MAX_BULK_RUNS, required=True),
        "metric_key": Spec(string, required=True),
        "start_step": Spec(integer),
        "end_step": Spec(integer),
        "max_results": Spec(bounded(integer, 1, MAX_RESULTS_PER_RUN)),
    }
    fields = await request_fields(request, schema)
    steps = _step_range(fields.get("start_step"), fields.get("end_step"))
    max_results = fields.get("max_results", MAX_RESULTS_PER_RUN)
    store = request.app[STORE]
    histories = []
    for run_id in fields["run_ids"]:
        page = await store.get_metric_history(run_id, fields["metric_key"], None, 0)
        histories.append((run_id, page.items))
    metrics: list[dict] = []
    for run_id, points in histories:
        if steps is not None:
            points = [m for m in points if steps[0] <= m.step <= steps[1]]
        metrics.extend(with_run_id(m, run_id) for m in sample(points, max_results))
    return json_response({"metrics": metrics} if metrics else {})


def _step_range(start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise InvalidParameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start > end:
        raise InvalidParameter(
            "end_step must be greater than start_step. "
            f"Found start_step={start} and end_step={end}."
        )
    return start, end


ENDPOINTS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "metrics/get-history-bulk", get_history_bulk),
    ("GET", "metrics/get-history-bulk-interval", get_history_bulk_interval),
)
