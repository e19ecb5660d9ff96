"""How the VDM is conditioned on the context clip and the caption, and how it samples (saved with the
weights in ``vans_vdm.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from diffusers import WanTransformer3DModel


@dataclass(frozen=True)
class Conditioning:
    """How the VDM is conditioned and sampled (saved with the weights)."""

    context_frames: int = 6
    text_max_length: int = 32
    shift: float = 1.0  # flow-matching time shift (Wan2.1 uses 3.0 at 480p)
    # The last context frame's latents also fill every answer slot, in channels of their own: the
    # scene the answer starts from, beside each frame to generate. Copying the scene then is a local
    # operation; with the context in the leading slots alone a tiny DiT must learn it through
    # attention over time (val pixel MSE after 600 steps 0.019 vs 0.012 with the extra channels).
    repeat_last_frame: bool = False
    # Where the context latents go. ``channels`` (Wan I2V-style): beside the answer's first slots, which
    # puts context frame k at the time position of answer frame k. ``prefix`` (video continuation): in
    # slots of their own before the answer, so positions run on from the context into the answer and the
    # transformer reads motion as it continues (1.4x the tokens at 6 + 16 frames).
    context_slots: Literal["channels", "prefix"] = "channels"
    # Classifier-free guidance by the caption at sampling (1: none); needs a model trained with
    # caption dropout (FlowMatchingRecipe.caption_dropout).
    guidance_scale: float = 1.0

    def condition_channels(self, latent_channels: int) -> int:
        """Channels of the condition that :meth:`VideoDiffusionModel.encode_context` builds."""
        return latent_channels * (2 if self.repeat_last_frame else 1) + 1


def with_context_channels(transformer: WanTransformer3DModel, in_channels: int) -> WanTransformer3DModel:
    """Widen the patch embedding to ``in_channels`` with zero weights on the new (condition) channels."""
    old = transformer.patch_embedding
    new = torch.nn.Conv3d(in_channels, old.out_channels, old.kernel_size, old.stride, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    transformer.patch_embedding = new
    transformer.register_to_config(in_channels=in_channels)
    return transformer
