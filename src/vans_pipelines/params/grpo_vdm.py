"""``parameters_grpo_vdm.yml``: Joint-GRPO stage 2."""

from __future__ import annotations

from pydantic import Field, model_validator

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.params.base import GRPOStageParams, Strict
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig


class AnchorParams(Strict):
    """Stage 2's anchor captions, written by the stage-1 VLM (greedy); the paper keeps an anchor only when
    its ROUGE-L to the ground-truth caption is at least 0.6."""

    min_rouge_l: float = Field(ge=0, le=1)
    max_new_tokens: int = Field(ge=1)


class GRPOVDMEvalParams(Strict):
    """Val figures before / after stage 2: ODE samples from every val anchor, ``draws`` noise draws per
    anchor for each seed (a seed's figure is the mean over anchors and draws)."""

    seeds: list[int] = Field(min_length=1)
    draws: int = Field(ge=1)
    limit: int | None = Field(ge=1)
    num_steps: int = Field(ge=1)  # ODE (deployed) sampler steps


class GRPOVDMParams(GRPOStageParams):
    """Joint-GRPO stage 2: the SFT VDM gets a LoRA adapter trained by Flow-GRPO on the anchors."""

    lora: LoraSpec
    grpo: GRPOConfig
    rewards: dict[str, float]
    optim: OptimConfig
    trainer: TrainerConfig
    sde: SDEConfig
    # clips per backward pass of a denoising step (None: the whole batch); same gradients, less memory
    micro_batch_size: int | None = Field(ge=1)
    anchors: AnchorParams
    eval: GRPOVDMEvalParams

    @model_validator(mode="after")
    def _stochastic_sampler(self) -> GRPOVDMParams:
        if self.sde.noise_level <= 0:
            # 0 is the deterministic ODE sampler: its steps have no log-probability to train on.
            raise ValueError(
                f"sde.noise_level: must be > 0 for stage-2 training (a stochastic step's log-prob is "
                f"what GRPO trains on; 0 is the ODE sampler), got {self.sde.noise_level}"
            )
        if self.micro_batch_size is not None and self.sde.keep_graphs:
            raise ValueError(
                "micro_batch_size: needs sde.keep_graphs false (the kept graphs hold the whole batch's "
                "steps at once, which is what micro-batching avoids)"
            )
        return self
