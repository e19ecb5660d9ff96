"""``parameters_grpo_vlm.yml``: Joint-GRPO stage 1."""

from __future__ import annotations

from pydantic import Field

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.params.base import GRPOStageParams, Strict
from vans_pipelines.rl.grpo import GRPOConfig, SamplingConfig
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig


class GRPOVLMEvalParams(Strict):
    """Val figures before / after stage 1: greedy answers, each rendered once per seed."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    limit: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(48, ge=1)


class GRPOVLMParams(GRPOStageParams):
    """Joint-GRPO stage 1: the SFT VLM gets a LoRA adapter trained by GRPO against the frozen SFT VDM."""

    lora: LoraSpec = LoraSpec(target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
    grpo: GRPOConfig = GRPOConfig(group_size=8, beta=0.04, scale_rewards="none")
    rewards: dict[str, float] = Field(
        default_factory=lambda: {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 1.0}
    )
    optim: OptimConfig = OptimConfig(lr=5e-4, warmup_steps=0, schedule="constant")
    trainer: TrainerConfig = TrainerConfig(
        max_steps=60, batch_size=4, checkpoint_every_n_steps=10, log_every_n_steps=1
    )
    sampling: SamplingConfig = SamplingConfig(temperature=0.7)
    render_steps: int = Field(4, ge=1)  # the frozen VDM's steps per reward render
    eval: GRPOVLMEvalParams = GRPOVLMEvalParams()
