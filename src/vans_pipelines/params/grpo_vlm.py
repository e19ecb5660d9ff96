"""``parameters_grpo_vlm.yml``: Joint-GRPO stage 1."""

from __future__ import annotations

from pydantic import Field

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.params.base import GRPOStageParams, Strict
from vans_pipelines.rl.grpo import GRPOConfig, SamplingConfig
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig


class GRPOVLMEvalParams(Strict):
    """Val figures before / after stage 1: greedy answers, each rendered once per seed."""

    seeds: list[int] = Field(min_length=1)
    limit: int | None = Field(ge=1)
    max_new_tokens: int = Field(ge=1)


class GRPOVLMParams(GRPOStageParams):
    """Joint-GRPO stage 1: the SFT VLM gets a LoRA adapter trained by GRPO against the frozen SFT VDM."""

    lora: LoraSpec
    grpo: GRPOConfig
    rewards: dict[str, float]
    optim: OptimConfig
    trainer: TrainerConfig
    sampling: SamplingConfig
    render_steps: int = Field(ge=1)  # the frozen VDM's steps per reward render
    eval: GRPOVLMEvalParams
