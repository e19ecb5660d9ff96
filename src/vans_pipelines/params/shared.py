"""``conf/<env>/parameters.yml``: what several stages share (the video geometry, where training writes its
side outputs) and the run context a hook builds from it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import Field, model_validator

from vans_pipelines.params.base import Strict
from vans_pipelines.training.trainer import RunPaths


class VideoGeometry(Strict):
    """What the video diffusion model can divide: every clip size is checked against it.

    The embedded tiny VAE keeps time (temporal factor 1); Wan2.1's VAE compresses time by 4, so its
    clips have 4k + 1 frames."""

    vae_spatial_factor: int = Field(2, ge=1)
    vae_temporal_factor: int = Field(1, ge=1)
    patch_size: tuple[int, int, int] = (1, 4, 4)

    @model_validator(mode="after")
    def _positive_patch(self) -> VideoGeometry:
        if min(self.patch_size) < 1:
            raise ValueError(f"patch_size entries must be >= 1, got {list(self.patch_size)}")
        return self


class RunParams(Strict):
    """Where Lightning writes TensorBoard runs (one folder per Kedro run) and resumable checkpoints."""

    log_dir: str = "data/07_model_output/tensorboard"
    checkpoint_dir: str = "data/06_models/resume"

    def context(self, run_id: str, project_path: str) -> RunContext:
        """This run's context (a hook builds it for the nodes); relative folders are under the project."""
        root = Path(project_path)
        paths = RunPaths(str(root / self.log_dir), str(root / self.checkpoint_dir), run_id)
        return RunContext(run_id, str(root), paths)


@dataclass(frozen=True)
class RunContext:
    """What a Kedro run tells its nodes: its id, the project folder, and where training writes
    TensorBoard runs and resumable checkpoints (``paths``)."""

    run_id: str
    project_path: str
    paths: RunPaths

    def logging_to(self, log_dir: str) -> RunPaths:
        """``paths`` with TensorBoard runs under ``log_dir`` instead (relative: under the project), for
        stages that keep their runs apart from the training stages' (tune, ablate)."""
        return replace(self.paths, log_dir=str(Path(self.project_path) / log_dir))
