"""A read-only Kedro dataset of training curves from the TensorBoard runs under a log folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

COLUMNS = ["stage", "run", "tag", "step", "value"]


class TensorBoardScalarsDataset(AbstractDataset[None, pd.DataFrame]):
    """Scalars of the latest run of each stage: Lightning writes ``<path>/<run id>/<stage>/events.*``
    (one run folder per Kedro run). Loads a table ``stage, run, tag, step, value``; a stage is taken from
    the run folder whose events file is newest. ``stages`` / ``tags`` select what is read (tags support a
    trailing ``*``). An absent log folder loads as an empty table (a run that trained nothing).

    Example catalog entry::

        training_curves:
          type: vans_pipelines.datasets.TensorBoardScalarsDataset
          path: data/07_model_output/tensorboard
          stages: [grpo_vlm, grpo_vdm]
          tags: ["reward/*/mean"]
    """

    def __init__(
        self,
        *,
        path: str,
        stages: list[str] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._path = Path(path)
        self._stages = stages
        self._tags = tags
        self.metadata = metadata

    def _wanted(self, tag: str) -> bool:
        if not self._tags:
            return True
        return any(tag.startswith(t[:-1]) if t.endswith("*") else tag == t for t in self._tags)

    def _latest_runs(self) -> dict[str, Path]:
        latest: dict[str, tuple[float, Path]] = {}
        for events in self._path.glob("*/*/events.out.tfevents.*"):
            stage_dir = events.parent
            stage = stage_dir.name
            if self._stages and stage not in self._stages:
                continue
            mtime = events.stat().st_mtime
            if stage not in latest or mtime > latest[stage][0]:
                latest[stage] = (mtime, stage_dir)
        return {stage: folder for stage, (_, folder) in sorted(latest.items())}

    def load(self) -> pd.DataFrame:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        rows = []
        for stage, folder in self._latest_runs().items():
            accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
            try:
                accumulator.Reload()
            except Exception as err:  # a truncated events file from a killed run
                raise DatasetError(f"{folder}: cannot read TensorBoard events ({err})") from err
            for tag in accumulator.Tags().get("scalars", []):
                if self._wanted(tag):
                    rows.extend(
                        (stage, folder.parent.name, tag, e.step, e.value) for e in accumulator.Scalars(tag)
                    )
        return pd.DataFrame(rows, columns=COLUMNS)

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{self._path}: TensorBoardScalarsDataset is read-only (Lightning writes the runs)"
        )

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "stages": self._stages, "tags": self._tags}
