"""MLflow 3's logged models, datasets and run inputs/outputs: entities, and the store operations
on them (`ModelStore`, a part of `TrackingStore`).

A logged model lives in an experiment, with its files at
`<experiment location>/models/<model id>/artifacts`; it may come from a run (`source_run_id`),
and carries params, tags and metrics (logged by runs with `model_id`). Datasets are kept once per
experiment by (name, digest); a run's inputs link it to datasets (with input tags such as
`mlflow.data.context`) and to models it used; its outputs are the models it produced.
(API-TRACKING.md A and B.)
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum

from tracking.store import Clause, Metric, Page, Param, Run, Tag

MODELS_DIR = "models"
MODEL_ARTIFACTS_DIR = "artifacts"
MODEL_ID_PREFIX = "m-"


class ModelStatus(IntEnum):
    LOGGED_MODEL_STATUS_UNSPECIFIED = 0
    LOGGED_MODEL_PENDING = 1
    LOGGED_MODEL_READY = 2
    LOGGED_MODEL_UPLOAD_FAILED = 3


@dataclass(frozen=True, slots=True)
class Registration:
    """A model-registry version made from this model (filled in by the registry, if any)."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class ModelMetric:
    """A metric of a logged model: which run logged it, on which dataset."""

    metric: Metric
    run_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""


@dataclass(frozen=True, slots=True)
class NewModel:
    """What `ModelStore.create_logged_model` is given (a random name when it has none)."""

    experiment_id: str
    name: str | None = None
    model_type: str = ""
    source_run_id: str = ""
    params: tuple[Param, ...] = ()
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class LoggedModel:
    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    status: ModelStatus
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    lifecycle_stage: str
    model_type: str = ""
    source_run_id: str = ""
    status_message: str = ""
    tags: tuple[Tag, ...] = ()
    params: tuple[Param, ...] = ()
    metrics: tuple[ModelMetric, ...] = ()
    registrations: tuple[Registration, ...] = ()


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str = ""
    profile: str = ""


@dataclass(frozen=True, slots=True)
class DatasetInput:
    dataset: Dataset
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelOutput:
    model_id: str
    step: int = 0


@dataclass(frozen=True, slots=True)
class RunIo:
    """What a run used and produced, as `runs/get` shows it (`inputs`, `outputs`)."""

    datasets: tuple[DatasetInput, ...] = ()
    model_inputs: tuple[str, ...] = ()
    model_outputs: tuple[ModelOutput, ...] = ()


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    experiment_id: str
    name: str
    digest: str
    context: str = ""


@dataclass(frozen=True, slots=True)
class ModelOrder:
    """One `order_by` entry: a model column, or `metrics.<key>` (its latest value, optionally on
    one dataset)."""

    field: str
    ascending: bool = True
    dataset_name: str = ""
    dataset_digest: str = ""


@dataclass(frozen=True, slots=True)
class ModelSearch:
    experiment_ids: tuple[str, ...]
    clauses: tuple[Clause, ...] = ()
    datasets: tuple[tuple[str, str], ...] = ()
    """(name, digest or '') pairs: metrics (filters and orderings) count only on these."""
    order_by: tuple[ModelOrder, ...] = ()
    max_results: int = 50
    offset: int = 0


class ModelStore(ABC):
    """The logged-model part of the tracking store (same rules as `TrackingStore`)."""

    @abstractmethod
    async def create_logged_model(self, new: NewModel) -> LoggedModel:
        """A new PENDING model in an active experiment; a random name when none is given."""

    @abstractmethod
    async def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel: ...

    @abstractmethod
    async def finalize_logged_model(self, model_id: str, status: ModelStatus) -> LoggedModel: ...

    @abstractmethod
    async def delete_logged_model(self, model_id: str) -> None:
        """Move the model to the deleted stage (gc removes it for good)."""

    @abstractmethod
    async def set_logged_model_tags(self, model_id: str, tags: list[Tag]) -> None: ...

    @abstractmethod
    async def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    @abstractmethod
    async def log_logged_model_params(self, model_id: str, params: list[Param]) -> None: ...

    @abstractmethod
    async def search_logged_models(self, search: ModelSearch) -> Page[LoggedModel]: ...

    @abstractmethod
    async def log_model_metrics(self, run_id: str, metrics: list[tuple[str, ModelMetric]]) -> None:
        """Link metrics a run logged with a `model_id` to that model: (model_id, metric)."""

    @abstractmethod
    async def log_inputs(
        self, run_id: str, datasets: list[DatasetInput], model_ids: list[str]
    ) -> None: ...

    @abstractmethod
    async def log_outputs(self, run_id: str, outputs: list[ModelOutput]) -> None: ...

    @abstractmethod
    async def run_io(self, run_ids: list[str]) -> dict[str, RunIo]:
        """Inputs and outputs of each run (runs with none are left out)."""

    @abstractmethod
    async def get_run_with_io(self, run_id: str) -> tuple[Run, RunIo | None]:
        """`get_run` and the run's `run_io`, read together (one trip to the database)."""

    @abstractmethod
    async def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]: ...

    @abstractmethod
    async def deleted_logged_models(
        self, experiment_ids: list[str] | None = None
    ) -> list[LoggedModel]:
        """Models in the deleted stage, or all models of the given (deleted) experiments (gc)."""

    @abstractmethod
    async def hard_delete_logged_model(self, model_id: str) -> None:
        """Remove a model's rows for good (gc)."""
