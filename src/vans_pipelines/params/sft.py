"""``parameters_sft.yml``: the VLM and VDM, built tiny or loaded, and their fine-tuning."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vans_pipelines.models.flow_matching import FlowMatchingRecipe
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.params.base import Strict
from vans_pipelines.training.trainer import EMAConfig, OptimConfig, TrainerConfig


class ModelSource(Strict):
    """``tiny``: random-init from the real config class (embedded default); ``pretrained``: a checkpoint
    folder or a hub id already in the local Hugging Face cache."""

    source: Literal["tiny", "pretrained"]
    path: str | None  # needed by ``pretrained``: checked for the stages a run runs (``check_run``)


class VLMEvalParams(Strict):
    max_new_tokens: int = Field(ge=1)
    limit: int | None = Field(ge=1)


class VLMParams(Strict):
    model: ModelSource
    tiny: TinyVLMSpec
    finetune: Literal["full", "lora"]
    lora: LoraSpec
    optim: OptimConfig
    trainer: TrainerConfig
    eval: VLMEvalParams


class VAEFitParams(Strict):
    """Fitting the tiny VAE on single frames; 0 steps keeps a pretrained VAE as it is."""

    steps: int = Field(ge=0)
    batch_frames: int = Field(ge=1)
    lr: float = Field(gt=0)
    kl_weight: float = Field(ge=0)
    # Pixels away from their frame's dominant colour (the world's objects on its background) weigh
    # this much more in the reconstruction loss, so that small objects are not averaged away.
    foreground_weight: float = Field(ge=1)
    # Frames whose latents set the VAE's latents_mean / latents_std after the fit.
    stats_frames: int = Field(ge=2)


class VDMEvalParams(Strict):
    num_steps: int = Field(ge=1)
    limit: int | None = Field(ge=1)


class VDMParams(Strict):
    model: ModelSource
    tiny: TinyVDMSpec
    conditioning: Conditioning
    finetune: Literal["full", "lora"]
    lora: LoraSpec
    train_text_encoder: bool
    # Encode every train clip's latents once before training instead of every step (memory:
    # train clips x latent size; off for paper-size data).
    cache_latents: bool
    vae_fit: VAEFitParams
    # torch.compile (inductor) of the transformer and VAE decoder while training and evaluating: equal to
    # eager up to float rounding; eager with one warning where no C++ compiler is found.
    compile: bool
    # The flow-matching recipe: where training draws noise levels, and an EMA of the weights to sample from.
    flow_matching: FlowMatchingRecipe
    ema: EMAConfig
    optim: OptimConfig
    trainer: TrainerConfig
    eval: VDMEvalParams

    @model_validator(mode="after")
    def _valid(self) -> VDMParams:
        if self.conditioning.context_frames < 1:
            raise ValueError(
                f"conditioning.context_frames: must be >= 1, got {self.conditioning.context_frames}"
            )
        return self


class SFTParams(Strict):
    vlm: VLMParams
    vdm: VDMParams
