"""Project hooks: typed parameters checked up front, the run id handed to training nodes, and rank-0-only
writes under torchrun."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline

from vans_pipelines.params import check_run, parse_section, validate_parameters
from vans_pipelines.training.trainer import global_rank

logger = logging.getLogger(__name__)

#: Free input of the nodes that need to know their run (a typed :class:`~vans_pipelines.params.RunContext`):
#: the run id (TensorBoard folders are named by run), the project path (relative side-output folders live
#: under it, whatever the working directory) and the training side outputs' folders (``params:run``).
RUN_CONTEXT = "run_context"


class ValidateParametersHook:
    """Checks every typed parameter section as soon as the context exists, before any node runs; checkpoint
    paths are checked once the pipeline is known, for the sections its nodes read."""

    def __init__(self) -> None:
        self._parsed: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._parsed = validate_parameters(context.params)

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        used = {
            name.split(":", 1)[1].split(".")[0] for name in pipeline.inputs() if name.startswith("params:")
        }
        check_run(self._parsed, used)


class RunContextHook:
    """Puts the typed run context in the catalog; under torchrun, makes every rank but 0 keep its outputs
    in memory."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        run_id = str(run_params.get("run_id") or run_params.get("session_id") or "run")
        run = parse_section("run", catalog.load("params:run") if "params:run" in catalog else {})
        context = run.context(run_id, str(run_params.get("project_path") or "."))
        catalog[RUN_CONTEXT] = MemoryDataset(context, copy_mode="assign")
        rank = global_rank()
        if rank == 0:
            return
        for name in pipeline.all_outputs():
            dataset = catalog.get(name) if name in catalog else None
            if dataset is not None and not isinstance(dataset, MemoryDataset):
                catalog[name] = RankZeroOnlyDataset(dataset, name, rank)


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


#: Lightning lines that say nothing about this run (an advert printed by every Trainer).
LIGHTNING_NOISE = ("💡 Tip:",)


class LibraryLoggingHook:
    """Lightning's records go through Kedro's handler once: ``import lightning`` adds a console handler of
    its own (so each INFO line printed twice under Kedro's), which is removed here once the project's
    logging is set up; its advert lines are dropped."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        quiet_library_logging()


def quiet_library_logging() -> None:
    import lightning  # noqa: F401  (its import adds the handlers removed below)

    root = logging.getLogger()
    if not root.handlers:
        return  # no project handler: leave Lightning's own, or nothing would print
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        library_logger = logging.getLogger(name)
        for handler in list(library_logger.handlers):
            if type(handler) is logging.StreamHandler:
                library_logger.removeHandler(handler)
        library_logger.propagate = True
    # On the handlers: a logger's own filters do not see records its children propagate.
    for handler in root.handlers:
        if not any(isinstance(f, _DropMessages) for f in handler.filters):
            handler.addFilter(_DropMessages(LIGHTNING_NOISE))


class RankZeroOnlyDataset(AbstractDataset[Any, Any]):
    """Wraps a persisted dataset on a rank > 0: saves stay in this process's memory (later nodes of the
    same rank read them back), so only rank 0 writes files."""

    def __init__(self, wrapped: AbstractDataset, name: str, rank: int):
        self._wrapped, self._name, self._rank = wrapped, name, rank
        self._data: Any = None
        self._saved = False

    def load(self) -> Any:
        return self._data if self._saved else self._wrapped.load()

    def save(self, data: Any) -> None:
        logger.info("rank %d: not writing %r (rank 0 writes outputs)", self._rank, self._name)
        self._data, self._saved = data, True

    def _exists(self) -> bool:
        return self._saved or self._wrapped.exists()

    def _describe(self) -> dict[str, Any]:
        return {"wraps": self._name, "rank": self._rank}
