"""``conf/<env>/parameters.yml``: what several stages share (the video geometry, where training writes its
side outputs) and the run context a hook builds from it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import Field, model_validator

from vans_pipelines.models.layouts import CLIP, QWEN2_5_VL, VIDEO_MODEL, WAN2_1, CheckpointLayout
from vans_pipelines.models.placement import CPU, Inference, Precision
from vans_pipelines.params.base import ParameterError, Strict
from vans_pipelines.training.trainer import RunPaths


class VideoGeometry(Strict):
    """What the video diffusion model can divide: every clip size is checked against it.

    The embedded tiny VAE keeps time (temporal factor 1); Wan2.1's VAE compresses time by 4, so its
    clips have 4k + 1 frames."""

    vae_spatial_factor: int = Field(ge=1)
    vae_temporal_factor: int = Field(ge=1)
    patch_size: tuple[int, int, int]

    @model_validator(mode="after")
    def _positive_patch(self) -> VideoGeometry:
        if min(self.patch_size) < 1:
            raise ValueError(f"patch_size entries must be >= 1, got {list(self.patch_size)}")
        return self


class CheckpointParams(Strict):
    """The released checkpoints a recipe loads, in one place. The embedded default loads none; conf/paper's
    stage sections take their model paths from these (``kedro run --env paper --params
    checkpoints.qwen2_5_vl=PATH,...`` or ``conf/paper/globals.yml``)."""

    qwen2_5_vl: str | None  # the VLM (Qwen2.5-VL-3B-Instruct); also the captioner and tokenizer
    wan2_1: str | None  # the VDM (Wan2.1-T2V-1.3B-Diffusers)
    clip: str | None  # the video-text scorer (a CLIPModel)
    fvd_extractor: str | None  # the FVD features (a transformers video model, e.g. VideoMAE)


#: What each checkpoint key must point at.
CHECKPOINT_LAYOUTS: dict[str, CheckpointLayout] = {
    "qwen2_5_vl": QWEN2_5_VL,
    "wan2_1": WAN2_1,
    "clip": CLIP,
    "fvd_extractor": VIDEO_MODEL,
}


class InferenceParams(Strict):
    """Where every evaluating step runs (stage reports, anchor captions, the evaluate stage): ``device``
    ``auto`` (this process's GPU when there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``;
    ``precision`` ``32-true`` or ``bf16-mixed``; ``batch_size`` of the stages' evaluation batches;
    ``read_workers``: processes that read (for span triplets: decode) the samples of those batches ahead
    of the model, 0 for the evaluating process itself."""

    device: str
    precision: Precision
    batch_size: int = Field(ge=1)
    read_workers: int = Field(ge=0)


class RunParams(Strict):
    """Where Lightning writes TensorBoard runs (one folder per Kedro run) and resumable checkpoints, where
    inference runs, and how many MiB of each split's read samples (decoded clips) a process keeps in
    memory (``sample_cache_mb``; 0: read them from storage every time)."""

    log_dir: str
    checkpoint_dir: str
    inference: InferenceParams
    sample_cache_mb: float = Field(ge=0)

    def context(self, run_id: str, project_path: str) -> RunContext:
        """This run's context (a hook builds it for the nodes); relative folders are under the project.
        ``ValueError`` naming ``run.inference.device`` when that device is not usable here."""
        root = Path(project_path)
        paths = RunPaths(str(root / self.log_dir), str(root / self.checkpoint_dir), run_id)
        settings = self.inference
        try:
            inference = Inference.resolve(settings.device, settings.precision, settings.batch_size)
        except ValueError as error:
            raise ParameterError(f"invalid parameters:\n  run.inference.device: {error}") from None
        return RunContext(run_id, str(root), paths, inference)


@dataclass(frozen=True)
class RunContext:
    """What a Kedro run tells its nodes: its id, the project folder, where training writes TensorBoard
    runs and resumable checkpoints (``paths``) and where evaluation runs (``inference``)."""

    run_id: str
    project_path: str
    paths: RunPaths
    inference: Inference = CPU

    def logging_to(self, log_dir: str) -> RunPaths:
        """``paths`` with TensorBoard runs under ``log_dir`` instead (relative: under the project), for
        stages that keep their runs apart from the training stages' (tune, ablate)."""
        return replace(self.paths, log_dir=str(Path(self.project_path) / log_dir))
