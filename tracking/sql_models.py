"""Logged models, datasets and run inputs/outputs as Core statements, run inside the SQL store's
transactions (`SqlModelStore` is the store's part that carries them out).

Rules follow MLflow's SQL store (API-TRACKING.md A.3-A.5, B.3): ids `m-<32 hex>`, files at
`<experiment location>/models/<id>/artifacts`, soft delete, tag upserts, params logged once,
datasets kept once per experiment by (name, digest) and never updated, a dataset linked to a run
once (later input tags dropped), model inputs idempotent. Where MLflow answers a repeated model
output with a 400 from the database, artgw keeps the first (the client logs each once).
"""

import functools
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    insert,
    or_,
    select,
    true,
    update,
)

from tracking import sql_exec, sql_query, sql_runs, uris
from tracking import sql_experiments as experiments
from tracking.errors import InvalidValue, NotFound
from tracking.logged_models import (
    MODEL_ARTIFACTS_DIR,
    MODEL_ID_PREFIX,
    MODELS_DIR,
    Dataset,
    DatasetInput,
    DatasetSummary,
    LoggedModel,
    ModelMetric,
    ModelOrder,
    ModelOutput,
    ModelSearch,
    ModelStatus,
    ModelStore,
    NewModel,
    Registration,
    RunIo,
)
from tracking.names import random_run_name
from tracking.schema import (
    datasets,
    input_tags,
    inputs,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_inputs,
    model_outputs,
    model_versions,
    registered_models,
    runs,
)
from tracking.store import ACTIVE, DELETED, Clause, Metric, Page, Param, Run, Tag, now_ms

T = TypeVar("T")
CONTEXT_TAG = "mlflow.data.context"
CHUNK = 500
_m = logged_models.c


# -- models ------------------------------------------------------------------------------------


def _to_model(row: Row[Any], extra: dict[str, dict[str, list[Any]]]) -> LoggedModel:
    found = extra.get(row.model_id, {})
    return LoggedModel(
        model_id=row.model_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        status=ModelStatus(row.status),
        creation_timestamp_ms=row.creation_timestamp_ms,
        last_updated_timestamp_ms=row.last_updated_timestamp_ms,
        lifecycle_stage=row.lifecycle_stage,
        model_type=row.model_type,
        source_run_id=row.source_run_id,
        status_message=row.status_message,
        tags=tuple(found.get("tags", ())),
        params=tuple(found.get("params", ())),
        metrics=tuple(found.get("metrics", ())),
        registrations=tuple(found.get("registrations", ())),
    )


def _load(c: Connection, rows: list[Row[Any]]) -> list[LoggedModel]:
    """Attach tags, params and metrics: three queries per chunk of models."""
    extra: dict[str, dict[str, list[Any]]] = {r.model_id: {} for r in rows}
    ids = list(extra)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for kind, table in (("tags", logged_model_tags), ("params", logged_model_params)):
            query = select(table).where(table.c.model_id.in_(chunk)).order_by(table.c.key)
            for row in c.execute(query):
                cls = Tag if kind == "tags" else Param
                extra[row.model_id].setdefault(kind, []).append(cls(row.key, row.value))
        t = logged_model_metrics.c
        query = (
            select(logged_model_metrics)
            .where(t.model_id.in_(chunk))
            .order_by(t.key, t.step, t.timestamp, t.run_id, t.dataset_name)
        )
        for row in c.execute(query):
            extra[row.model_id].setdefault("metrics", []).append(_to_model_metric(row))
        for row in c.execute(_registrations(chunk)):
            found = Registration(row.name, str(row.version))
            extra[row.model_id].setdefault("registrations", []).append(found)
    return [_to_model(row, extra) for row in rows]


def _registrations(model_ids: list[str]) -> Select[Any]:
    """The registry's versions made from these models (tracking/sql_registry.py)."""
    mv, rm = model_versions.c, registered_models.c
    return (
        select(mv.model_id, rm.name, mv.version)
        .join(registered_models, rm.model_key == mv.model_key)
        .where(mv.model_id.in_(model_ids))
        .order_by(rm.name, mv.version)
    )


def _to_model_metric(row: Row[Any]) -> ModelMetric:
    value = math.nan if row.is_nan else row.value
    metric = Metric(row.key, value, row.timestamp, row.step)
    return ModelMetric(metric, row.run_id, row.dataset_name, row.dataset_digest)


def _row(c: Connection, model_id: str, allow_deleted: bool = False) -> Row[Any]:
    row = c.execute(select(logged_models).where(_m.model_id == model_id)).first()
    if row is None or (row.lifecycle_stage != ACTIVE and not allow_deleted):
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return row


def get(c: Connection, model_id: str, allow_deleted: bool = False) -> LoggedModel:
    return _load(c, [_row(c, model_id, allow_deleted)])[0]


def validate_name(name: str | None) -> None:
    if name is None:
        return
    bad = [char for char in "/:.%\"'" if char in name]
    if not name or bad:
        raise InvalidValue(
            f"Invalid model name {name!r}: a name must be non-empty and contain none of "
            "'/', ':', '.', '%', '\"' and \"'\"."
        )


def create(c: Connection, new: NewModel) -> LoggedModel:
    experiment_id, name = new.experiment_id, new.name
    validate_name(name)
    experiment = experiments.get(c, experiment_id)
    experiments.require_active("experiment", experiment_id, experiment.lifecycle_stage)
    model_id = MODEL_ID_PREFIX + uuid.uuid4().hex
    now = now_ms()
    c.execute(
        insert(logged_models).values(
            model_id=model_id,
            experiment_id=int(experiment.experiment_id),
            name=name or random_run_name(),
            model_type=new.model_type,
            source_run_id=new.source_run_id,
            status=int(ModelStatus.LOGGED_MODEL_PENDING),
            status_message="",
            artifact_location=uris.append_path(
                experiment.artifact_location, MODELS_DIR, model_id, MODEL_ARTIFACTS_DIR
            ),
            lifecycle_stage=ACTIVE,
            creation_timestamp_ms=now,
            last_updated_timestamp_ms=now,
        )
    )
    _insert_params(c, model_id, new.params)
    _upsert_tags(c, model_id, new.tags)
    return get(c, model_id)


def _touch(c: Connection, model_id: str, **values: Any) -> None:
    c.execute(
        update(logged_models)
        .where(_m.model_id == model_id)
        .values(last_updated_timestamp_ms=now_ms(), **values)
    )


def finalize(c: Connection, model_id: str, status: ModelStatus) -> LoggedModel:
    _row(c, model_id, allow_deleted=True)
    _touch(c, model_id, status=int(status))
    return get(c, model_id, allow_deleted=True)


def delete_(c: Connection, model_id: str) -> None:
    _row(c, model_id)
    _touch(c, model_id, lifecycle_stage=DELETED)


def hard_delete(c: Connection, model_id: str) -> None:
    _row(c, model_id, allow_deleted=True)
    c.execute(delete(logged_models).where(_m.model_id == model_id))


def set_tags(c: Connection, model_id: str, tags: list[Tag]) -> None:
    _row(c, model_id)
    _upsert_tags(c, model_id, tags)


def delete_tag(c: Connection, model_id: str, key: str) -> None:
    _row(c, model_id)
    t = logged_model_tags.c
    found = c.execute(delete(logged_model_tags).where(t.model_id == model_id, t.key == key))
    if found.rowcount == 0:
        raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")


def log_params(c: Connection, model_id: str, params: list[Param]) -> None:
    _row(c, model_id)
    _insert_params(c, model_id, params)


def _upsert_tags(c: Connection, model_id: str, tags: Sequence[Tag]) -> None:
    values = {tag.key: tag.value for tag in tags}  # the last of a repeated key wins
    if values:
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()]
        c.execute(sql_query.upsert(c, logged_model_tags, "value"), rows)


def _insert_params(c: Connection, model_id: str, params: Sequence[Param]) -> None:
    """Params are logged once; the same value again is fine, another value is refused."""
    wanted: dict[str, str] = {}
    for param in params:
        if wanted.setdefault(param.key, param.value) != param.value:
            raise InvalidValue(f"Param '{param.key}' is given twice with different values.")
    if not wanted:
        return
    t = logged_model_params.c
    held = dict(c.execute(select(t.key, t.value).where(t.model_id == model_id)).all())
    for key, value in wanted.items():
        if key in held and held[key] != value:
            raise InvalidValue(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{held[key]}' for model ID='{model_id}'."
            )
    new = [{"model_id": model_id, "key": k, "value": v} for k, v in wanted.items() if k not in held]
    if new:
        c.execute(insert(logged_model_params), new)


def log_metrics(c: Connection, run_id: str, metrics: list[tuple[str, ModelMetric]]) -> None:
    """Metrics a run logged with a model id; a model that does not exist is skipped (MLflow
    checks neither)."""
    model_ids = list({model_id for model_id, _ in metrics})
    known = set(c.execute(select(_m.model_id).where(_m.model_id.in_(model_ids))).scalars())
    rows = [
        {
            "model_id": model_id,
            "key": m.metric.key,
            "value": 0.0 if math.isnan(m.metric.value) else m.metric.value,
            "is_nan": int(math.isnan(m.metric.value)),
            "timestamp": m.metric.timestamp,
            "step": m.metric.step,
            "run_id": run_id,
            "dataset_name": m.dataset_name,
            "dataset_digest": m.dataset_digest,
        }
        for model_id, m in metrics
        if model_id in known
    ]
    if rows:
        c.execute(sql_query.insert_ignoring(c, logged_model_metrics), rows)


# -- search ------------------------------------------------------------------------------------


def search(c: Connection, query: ModelSearch) -> Page[LoggedModel]:
    keys = [k for k in map(experiments.key_of, query.experiment_ids) if k is not None]
    statement = (
        select(logged_models)
        .where(_m.experiment_id.in_(keys), _m.lifecycle_stage == ACTIVE)
        .where(*(_condition(clause, query.datasets) for clause in query.clauses))
        .order_by(*_order(query.order_by, query.datasets))
        .limit(query.max_results + 1)
        .offset(query.offset)
    )
    if query.datasets and not any(clause.kind == "metric" for clause in query.clauses):
        m = logged_model_metrics.c
        statement = statement.where(
            exists().where(m.model_id == _m.model_id, _on_datasets(query.datasets))
        )
    rows: list[Row[Any]] = list(c.execute(statement).all())
    page = sql_query.page(rows, query.max_results, query.offset)
    return Page(_load(c, page.items), page.next_offset)


def _on_datasets(wanted: tuple[tuple[str, str], ...]) -> ColumnElement[bool]:
    """A metric row counts when it is on one of the datasets asked for (any, if none)."""
    m = logged_model_metrics.c
    if not wanted:
        return true()
    return or_(
        *(
            and_(m.dataset_name == name, *([m.dataset_digest == digest] if digest else []))
            for name, digest in wanted
        )
    )


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    return sql_query.COMPARE[op](column, value)


def _condition(clause: Clause, wanted: tuple[tuple[str, str], ...]) -> ColumnElement[bool]:
    if clause.kind == "attribute":
        column: Any = _m[clause.key]
        if clause.key == "experiment_id":
            column = cast(column, String)
        return _compare(column, clause.op, clause.value)
    if clause.kind == "metric":
        m = logged_model_metrics.c
        return exists().where(
            m.model_id == _m.model_id,
            m.key == clause.key,
            m.is_nan == 0,
            _compare(m.value, clause.op, clause.value),
            _on_datasets(wanted),
        )
    table = logged_model_params if clause.kind == "param" else logged_model_tags
    return exists().where(
        table.c.model_id == _m.model_id,
        table.c.key == clause.key,
        _compare(table.c.value, clause.op, clause.value),
    )


def _order(orders: tuple[ModelOrder, ...], wanted: tuple[tuple[str, str], ...]) -> list[Any]:
    terms: list[Any] = []
    for order in orders:
        if order.field.startswith("metrics."):
            expression: Any = _latest_metric(order)
        else:
            expression = _m[order.field]
        terms.append(case((expression.is_(None), 1), else_=0))
        terms.append(expression.asc() if order.ascending else expression.desc())
    if not any(order.field == "creation_timestamp_ms" for order in orders):
        terms.append(_m.creation_timestamp_ms.desc())
    terms.append(_m.model_id.asc())
    return terms


def _latest_metric(order: ModelOrder) -> Any:
    """The model's latest value of the metric (on the order's dataset, if it names one)."""
    m = logged_model_metrics.c
    on = [m.model_id == _m.model_id, m.key == order.field.removeprefix("metrics.")]
    if order.dataset_name:
        on.append(m.dataset_name == order.dataset_name)
        if order.dataset_digest:
            on.append(m.dataset_digest == order.dataset_digest)
    value = case((m.is_nan == 1, None), else_=m.value)
    return (
        select(value)
        .where(*on)
        .order_by(m.timestamp.desc(), m.step.desc(), m.run_id.asc())
        .limit(1)
        .scalar_subquery()
    )


# -- inputs and outputs ------------------------------------------------------------------------


def _run(c: Connection, run_id: str) -> Row[Any]:
    row = c.execute(select(runs).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    experiments.require_active("run", run_id, row.lifecycle_stage)
    return row


def log_inputs(
    c: Connection, run_id: str, dataset_inputs: list[DatasetInput], model_ids: list[str]
) -> None:
    run = _run(c, run_id)
    firsts: dict[tuple[str, str], DatasetInput] = {}
    for item in dataset_inputs:
        firsts.setdefault((item.dataset.name, item.dataset.digest), item)
    for item in firsts.values():
        dataset_uuid = _dataset_uuid(c, run.experiment_id, item.dataset)
        linked = c.execute(
            select(inputs.c.run_id).where(
                inputs.c.run_id == run_id, inputs.c.dataset_uuid == dataset_uuid
            )
        ).first()
        if linked is not None:
            continue
        c.execute(insert(inputs).values(run_id=run_id, dataset_uuid=dataset_uuid))
        tags = {tag.key: tag.value for tag in item.tags}
        if tags:
            rows = [
                {"run_id": run_id, "dataset_uuid": dataset_uuid, "key": k, "value": v}
                for k, v in tags.items()
            ]
            c.execute(insert(input_tags), rows)
    if model_ids:
        rows = [{"run_id": run_id, "model_id": model_id} for model_id in dict.fromkeys(model_ids)]
        c.execute(sql_query.insert_ignoring(c, model_inputs), rows)


def _dataset_uuid(c: Connection, experiment_key: int, dataset: Dataset) -> str:
    d = datasets.c
    found = c.execute(
        select(d.dataset_uuid).where(
            d.experiment_id == experiment_key, d.name == dataset.name, d.digest == dataset.digest
        )
    ).scalar()
    if found is not None:
        return found
    dataset_uuid = uuid.uuid4().hex
    c.execute(
        insert(datasets).values(
            dataset_uuid=dataset_uuid,
            experiment_id=experiment_key,
            name=dataset.name,
            digest=dataset.digest,
            source_type=dataset.source_type,
            source=dataset.source,
            dataset_schema=dataset.schema,
            dataset_profile=dataset.profile,
        )
    )
    return dataset_uuid


def log_outputs(c: Connection, run_id: str, outputs: list[ModelOutput]) -> None:
    _run(c, run_id)
    rows = [{"run_id": run_id, "model_id": o.model_id, "step": o.step} for o in outputs]
    if rows:
        c.execute(sql_query.insert_ignoring(c, model_outputs), rows)


def run_io(c: Connection, run_ids: list[str]) -> dict[str, RunIo]:
    """The runs' dataset inputs, model inputs and outputs: one statement per chunk of runs that
    uses none, five otherwise, run on the driver's cursor (runs/search asks for a page of runs
    each time)."""
    found: dict[str, dict[str, list[Any]]] = {}

    def add(run_id: str, kind: str, item: Any) -> None:
        found.setdefault(run_id, {}).setdefault(kind, []).append(item)

    for start in range(0, len(run_ids), CHUNK):
        chunk = run_ids[start : start + CHUNK]
        named = {f"r{i}": run_id for i, run_id in enumerate(chunk)}
        any_io, of_datasets, of_tags, of_inputs, of_outputs = _io_statements(len(chunk))
        probe = sql_exec.first(c, any_io, named)
        if probe is None or not probe[0]:
            continue  # the common case, runs without inputs or outputs: one statement, not four
        tags: dict[tuple[str, str], list[Tag]] = {}
        for run_id, dataset_uuid, key, value in sql_exec.rows(c, of_tags, named):
            tags.setdefault((run_id, dataset_uuid), []).append(Tag(key, value))
        for run_id, dataset_uuid, *dataset in sql_exec.rows(c, of_datasets, named):
            item = DatasetInput(_dataset(*dataset), tuple(tags.get((run_id, dataset_uuid), ())))
            add(run_id, "datasets", item)
        for run_id, model_id in sql_exec.rows(c, of_inputs, named):
            add(run_id, "model_inputs", model_id)
        for run_id, model_id, step in sql_exec.rows(c, of_outputs, named):
            add(run_id, "model_outputs", ModelOutput(model_id, step))
    return {
        run_id: RunIo(
            tuple(kinds.get("datasets", ())),
            tuple(kinds.get("model_inputs", ())),
            tuple(kinds.get("model_outputs", ())),
        )
        for run_id, kinds in found.items()
    }


def _dataset(
    name: str, digest: str, source_type: str, source: str, schema: str | None, profile: str | None
) -> Dataset:
    return Dataset(name, digest, source_type, source, schema or "", profile or "")


@functools.lru_cache(maxsize=64)
def _io_statements(count: int) -> tuple[Select[Any], ...]:
    """`run_io`'s statements for `count` runs, bound as r0, r1, ...: whether any of them has an
    input or output, then dataset inputs, their tags, model inputs, model outputs (one set per
    page size). A dataset's tags belong to its input: the probe need not look at them."""
    ids = sql_query.bound_list("r", count)
    d, i, t, mi, mo = datasets.c, inputs.c, input_tags.c, model_inputs.c, model_outputs.c
    dataset = (d.name, d.digest, d.source_type, d.source, d.dataset_schema, d.dataset_profile)
    used = (inputs, model_inputs, model_outputs)
    return (
        select(or_(*(exists().where(table.c.run_id.in_(ids)) for table in used))),
        select(i.run_id, i.dataset_uuid, *dataset)
        .join(datasets, d.dataset_uuid == i.dataset_uuid)
        .where(i.run_id.in_(ids))
        .order_by(d.name, d.digest),
        select(t.run_id, t.dataset_uuid, t.key, t.value).where(t.run_id.in_(ids)).order_by(t.key),
        select(mi.run_id, mi.model_id).where(mi.run_id.in_(ids)).order_by(mi.model_id),
        select(mo.run_id, mo.model_id, mo.step)
        .where(mo.run_id.in_(ids))
        .order_by(mo.step, mo.model_id),
    )


def search_datasets(c: Connection, experiment_ids: list[str]) -> list[DatasetSummary]:
    keys = [k for k in map(experiments.key_of, experiment_ids) if k is not None]
    d, i, t = datasets.c, inputs.c, input_tags.c
    context = (
        select(t.value)
        .where(t.run_id == i.run_id, t.dataset_uuid == i.dataset_uuid, t.key == CONTEXT_TAG)
        .scalar_subquery()
    )
    query = (
        select(d.experiment_id, d.name, d.digest, context.label("context"))
        .join(inputs, i.dataset_uuid == d.dataset_uuid)
        .where(d.experiment_id.in_(keys))
        .distinct()
        .order_by(d.experiment_id, d.name, d.digest)
    )
    return [
        DatasetSummary(str(row.experiment_id), row.name, row.digest, row.context or "")
        for row in c.execute(query)
    ]


# -- gc ----------------------------------------------------------------------------------------


def deleted(c: Connection, experiment_ids: list[str] | None) -> list[LoggedModel]:
    if experiment_ids is None:
        where: Any = _m.lifecycle_stage == DELETED
    else:
        keys = [k for k in map(experiments.key_of, experiment_ids) if k is not None]
        where = _m.experiment_id.in_(keys)
    rows = c.execute(select(logged_models).where(where).order_by(_m.last_updated_timestamp_ms))
    return [_to_model(row, {}) for row in rows]


class SqlModelStore(ModelStore):
    """`ModelStore` on the SQL store's transactions (mixed into `SqlStore`)."""

    async def _write(self, work: Callable[[Connection], T]) -> T:
        raise NotImplementedError

    async def _read(self, work: Callable[[Connection], T]) -> T:
        raise NotImplementedError

    async def create_logged_model(self, new: NewModel) -> LoggedModel:
        return await self._write(lambda c: create(c, new))

    async def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return await self._read(lambda c: get(c, model_id, allow_deleted))

    async def finalize_logged_model(self, model_id: str, status: ModelStatus) -> LoggedModel:
        return await self._write(lambda c: finalize(c, model_id, status))

    async def delete_logged_model(self, model_id: str) -> None:
        await self._write(lambda c: delete_(c, model_id))

    async def set_logged_model_tags(self, model_id: str, tags: list[Tag]) -> None:
        await self._write(lambda c: set_tags(c, model_id, tags))

    async def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        await self._write(lambda c: delete_tag(c, model_id, key))

    async def log_logged_model_params(self, model_id: str, params: list[Param]) -> None:
        await self._write(lambda c: log_params(c, model_id, params))

    async def search_logged_models(self, search_: ModelSearch) -> Page[LoggedModel]:
        return await self._read(lambda c: search(c, search_))

    async def log_model_metrics(self, run_id: str, metrics: list[tuple[str, ModelMetric]]) -> None:
        if metrics:
            await self._write(lambda c: log_metrics(c, run_id, metrics))

    async def log_inputs(
        self, run_id: str, datasets_: list[DatasetInput], model_ids: list[str]
    ) -> None:
        await self._write(lambda c: log_inputs(c, run_id, datasets_, model_ids))

    async def log_outputs(self, run_id: str, outputs: list[ModelOutput]) -> None:
        await self._write(lambda c: log_outputs(c, run_id, outputs))

    async def run_io(self, run_ids: list[str]) -> dict[str, RunIo]:
        return await self._read(lambda c: run_io(c, run_ids))

    async def get_run_with_io(self, run_id: str) -> tuple[Run, RunIo | None]:
        def read(c: Connection) -> tuple[Run, RunIo | None]:
            run = sql_runs.get(c, run_id)
            return run, run_io(c, [run_id]).get(run_id)

        return await self._read(read)

    async def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]:
        return await self._read(lambda c: search_datasets(c, experiment_ids))

    async def deleted_logged_models(
        self, experiment_ids: list[str] | None = None
    ) -> list[LoggedModel]:
        return await self._read(lambda c: deleted(c, experiment_ids))

    async def hard_delete_logged_model(self, model_id: str) -> None:
        await self._write(lambda c: hard_delete(c, model_id))
