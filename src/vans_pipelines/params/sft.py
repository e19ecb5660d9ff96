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

    source: Literal["tiny", "pretrained"] = "tiny"
    path: str | None = None  # needed by ``pretrained``: checked for the stages a run runs (``check_run``)


class VLMEvalParams(Strict):
    max_new_tokens: int = Field(48, ge=1)
    limit: int | None = Field(None, ge=1)


class VLMParams(Strict):
    model: ModelSource = ModelSource()
    tiny: TinyVLMSpec = TinyVLMSpec(vision_hidden_size=64)
    finetune: Literal["full", "lora"] = "full"
    lora: LoraSpec = LoraSpec()
    optim: OptimConfig = OptimConfig(lr=2e-3, warmup_steps=20)
    trainer: TrainerConfig = TrainerConfig(
        max_steps=2000, batch_size=32, checkpoint_every_n_steps=100, val_every_n_steps=500
    )
    eval: VLMEvalParams = VLMEvalParams()


class VAEFitParams(Strict):
    """Fitting the tiny VAE on single frames; 0 steps keeps a pretrained VAE as it is."""

    steps: int = Field(800, ge=0)
    batch_frames: int = Field(8, ge=1)
    lr: float = Field(3e-3, gt=0)
    kl_weight: float = Field(1e-6, ge=0)
    # Pixels away from their frame's dominant colour (the world's objects on its background) weigh
    # this much more in the reconstruction loss, so that small objects are not averaged away.
    foreground_weight: float = Field(10.0, ge=1)
    # Frames whose latents set the VAE's latents_mean / latents_std after the fit.
    stats_frames: int = Field(1024, ge=2)


class VDMEvalParams(Strict):
    num_steps: int = Field(6, ge=1)
    limit: int | None = Field(None, ge=1)


class VDMParams(Strict):
    model: ModelSource = ModelSource()
    tiny: TinyVDMSpec = TinyVDMSpec(num_heads=8, ffn_dim=512)
    conditioning: Conditioning = Conditioning(shift=12.0, repeat_last_frame=True)
    finetune: Literal["full", "lora"] = "full"
    lora: LoraSpec = LoraSpec(target_modules=("to_q", "to_k", "to_v", "to_out.0"))
    train_text_encoder: bool = True
    # Encode every train clip's latents once before training instead of every step (memory:
    # train clips x latent size; off for paper-size data).
    cache_latents: bool = True
    vae_fit: VAEFitParams = VAEFitParams()
    # torch.compile (inductor) of the transformer and VAE decoder while training and evaluating: equal to
    # eager up to float rounding; eager with one warning where no C++ compiler is found.
    compile: bool = False
    # The flow-matching recipe: where training draws noise levels, and an EMA of the weights to sample from.
    flow_matching: FlowMatchingRecipe = FlowMatchingRecipe()
    ema: EMAConfig = EMAConfig()
    optim: OptimConfig = OptimConfig(lr=4e-3, warmup_steps=20)
    trainer: TrainerConfig = TrainerConfig(max_steps=600, batch_size=16, checkpoint_every_n_steps=100)
    eval: VDMEvalParams = VDMEvalParams()

    @model_validator(mode="after")
    def _valid(self) -> VDMParams:
        if self.conditioning.context_frames < 1:
            raise ValueError(
                f"conditioning.context_frames: must be >= 1, got {self.conditioning.context_frames}"
            )
        return self


class SFTParams(Strict):
    vlm: VLMParams = VLMParams()
    vdm: VDMParams = VDMParams()
