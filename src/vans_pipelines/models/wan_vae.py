"""Wan VAE geometry (compression factors, latent frames) and a faster path through diffusers' Wan VAE
for single-frame chunks.

Wan's causal 3D convolutions pad the time axis with ``k - 1`` zero frames when no cached frames are
given. For a one-frame chunk without cache (every frame when a VAE without temporal compression is run
frame-folded, and the first chunk of Wan2.1's encode and decode), only the last temporal slice of the
kernel meets real data, so the convolution equals a 2D convolution with that slice: the same numbers
(to float rounding) and gradients (the zero-padded slices get zero gradient either way), without
convolving ``k - 1`` frames of zeros. Measured on the tiny default VAE: decode about 5x faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d


class SingleFrameCausalConv3d(WanCausalConv3d):
    """``WanCausalConv3d`` that runs one-frame, cache-free inputs as the equivalent 2D convolution."""

    def _single_frame_exact(self, x: torch.Tensor, cache_x: torch.Tensor | None) -> bool:
        return (
            cache_x is None
            and x.shape[2] == 1
            and self.dilation[0] == 1
            and self._padding[4] == self.kernel_size[0] - 1  # fully causal zero padding in time
            and self._padding[5] == 0
        )

    def forward(self, x: torch.Tensor, cache_x: torch.Tensor | None = None) -> torch.Tensor:
        if not self._single_frame_exact(x, cache_x):
            return super().forward(x, cache_x)
        spatial_padding = self._padding[:4]
        frame = F.pad(x[:, :, 0], spatial_padding) if any(spatial_padding) else x[:, :, 0]
        out = F.conv2d(
            frame,
            self.weight[:, :, -1],
            self.bias,
            stride=self.stride[1:],
            dilation=self.dilation[1:],
            groups=self.groups,
        )
        return out.unsqueeze(2)


def use_single_frame_convolutions(vae: AutoencoderKLWan) -> AutoencoderKLWan:
    """Switch every causal convolution of ``vae`` to :class:`SingleFrameCausalConv3d` in place (weights,
    state-dict keys and saved checkpoints are unchanged). Returns ``vae``."""
    for module in vae.modules():
        if type(module) is WanCausalConv3d:
            module.__class__ = SingleFrameCausalConv3d
    return vae


def vae_factors(vae: AutoencoderKLWan) -> tuple[int, int]:
    """(spatial, temporal) compression of a Wan VAE, from its config."""
    spatial = 2 ** (len(vae.config.dim_mult) - 1) * (vae.config.patch_size or 1)
    temporal = 2 ** sum(bool(x) for x in vae.config.temperal_downsample)
    return spatial, temporal


def latent_frames(frames: int, temporal_factor: int) -> int:
    """Latent frames of a ``frames``-frame clip: a VAE that compresses time by ``temporal_factor`` keeps the
    first frame and folds each later run of that many into one (Wan2.1: 4k + 1 frames -> k + 1).

    >>> latent_frames(33, 4), latent_frames(16, 1)
    (9, 16)
    """
    return frames if temporal_factor == 1 else (frames - 1) // temporal_factor + 1
