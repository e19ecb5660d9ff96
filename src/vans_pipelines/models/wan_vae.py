"""Wan VAE geometry (compression factors, latent frames) and faster paths through diffusers' Wan VAE:
single-frame chunks, and its RMS norm.

Wan's causal 3D convolutions pad the time axis with ``k - 1`` zero frames when no cached frames are
given. For a one-frame chunk without cache (every frame when a VAE without temporal compression is run
frame-folded, and the first chunk of Wan2.1's encode and decode), only the last temporal slice of the
kernel meets real data, so the convolution equals a 2D convolution with that slice: the same numbers
(to float rounding) and gradients (the zero-padded slices get zero gradient either way), without
convolving ``k - 1`` frames of zeros. Measured on the tiny default VAE: decode about 5x faster.

Wan's RMS norm normalises over the channel axis of channel-first tensors with ``F.normalize``, whose
strided vector norm is slow on a CPU: the sum of squares along that axis is the same number at 0.3-0.45
of the time on the tiny VAE's activation shapes. A quarter of the latent cache's time was in it; with the
norm swapped too, encoding frames takes 0.6-0.7 of the time it takes with the fast convolutions alone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm

_NORM_EPS = 1e-12  # F.normalize's


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


class SumOfSquaresRMSNorm(WanRMS_norm):
    """``WanRMS_norm`` with the channel norm as a sum of squares (``F.normalize``'s value, eps included;
    half-precision inputs are normalised in float32, as there)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = 1 if self.channel_first else -1
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        inverse_norm = wide.square().sum(dim, keepdim=True).clamp_min(_NORM_EPS**2).rsqrt()
        return (wide * inverse_norm).to(x.dtype) * self.scale * self.gamma + self.bias


def use_fast_vae_paths(vae: AutoencoderKLWan) -> AutoencoderKLWan:
    """Switch every causal convolution of ``vae`` to :class:`SingleFrameCausalConv3d` and every RMS norm
    to :class:`SumOfSquaresRMSNorm`, in place (weights, state-dict keys and saved checkpoints are
    unchanged). Returns ``vae``."""
    swaps = {WanCausalConv3d: SingleFrameCausalConv3d, WanRMS_norm: SumOfSquaresRMSNorm}
    for module in vae.modules():
        if type(module) in swaps:
            module.__class__ = swaps[type(module)]
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


def to_model_video(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, T, H, W, 3]`` → float ``[B, 3, T, H, W]`` in [-1, 1]."""
    x = torch.as_tensor(frames)
    return x.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def to_uint8_video(x: torch.Tensor) -> np.ndarray:
    """float ``[B, 3, T, H, W]`` in [-1, 1] → uint8 ``[B, T, H, W, 3]``."""
    x = x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()
