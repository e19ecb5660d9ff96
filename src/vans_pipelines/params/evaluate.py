"""``parameters_evaluate.yml``: the systems, seeds, sampler and FVD features of the evaluate stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vans_pipelines.params.base import Strict


class FVDParams(Strict):
    """The FVD feature extractor: the run's scorer (default) or a transformers video model folder
    (``pretrained``, e.g. VideoMAE on Kinetics); the report names whichever is used."""

    kind: Literal["scorer", "pretrained"]
    path: str | None


class GridParams(Strict):
    samples: int = Field(ge=1)  # test samples (rows) in the video grid
    scale: int = Field(ge=1)  # nearest-neighbour upscaling of each cell


class EvaluateParams(Strict):
    """The evaluate stage: which systems, how many seeds (diffusion noise), sampler steps, FVD features."""

    systems: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    num_steps: int = Field(ge=1)
    max_new_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    limit: int | None = Field(ge=2)
    fvd: FVDParams
    grid: GridParams
    curve_tags: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> EvaluateParams:
        from vans_pipelines.evaluation.systems import system_by_name

        system_by_name(self.systems, key="systems")
        return self
