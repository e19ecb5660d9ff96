"""Identity of a model's weights, so a resumable checkpoint is only resumed into the run it belongs to."""

from __future__ import annotations

import hashlib

import torch


@torch.no_grad()
def weights_fingerprint(*modules: torch.nn.Module) -> str:
    """A short hash of every parameter's name, shape and two moments: a different input checkpoint (e.g. a
    re-trained SFT model) gives a different key. One pass of sums, cheap next to a training step."""
    digest = hashlib.sha256()
    for module in modules:
        for name, param in module.state_dict().items():
            value = param.detach().float()
            moments = (float(value.sum()), float(value.abs().sum())) if value.numel() else (0.0, 0.0)
            digest.update(f"{name}{tuple(value.shape)}{moments[0]:.6e}{moments[1]:.6e}".encode())
    return digest.hexdigest()[:12]
