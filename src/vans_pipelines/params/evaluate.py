"""``parameters_evaluate.yml``: the systems, seeds, sampler and FVD features of the evaluate stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vans_pipelines.params.base import Strict


class FVDParams(Strict):
    """The FVD feature extractor: the run's scorer (default) or a transformers video model folder
    (``pretrained``, e.g. VideoMAE on Kinetics); the report names whichever is used."""

    kind: Literal["scorer", "pretrained"] = "scorer"
    path: str | None = None


class GridParams(Strict):
    samples: int = Field(4, ge=1)  # test samples (rows) in the video grid
    scale: int = Field(4, ge=1)  # nearest-neighbour upscaling of each cell


class EvaluateParams(Strict):
    """The evaluate stage: which systems, how many seeds (diffusion noise), sampler steps, FVD features."""

    systems: list[str] = Field(
        default_factory=lambda: [
            "vlm_only",
            "sft_cascade",
            "stage1_only",
            "stage2_only",
            "joint_grpo",
            "still_frame",
            "truth_caption_sft_vdm",
            "truth_caption_grpo_vdm",
        ],
        min_length=1,
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    num_steps: int = Field(6, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(32, ge=1)
    limit: int | None = Field(None, ge=2)
    fvd: FVDParams = FVDParams()
    grid: GridParams = GridParams()
    curve_tags: list[str] = Field(default_factory=lambda: ["reward/total/mean"], min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> EvaluateParams:
        from vans_pipelines.evaluation.systems import system_by_name

        system_by_name(self.systems, key="systems")
        return self
