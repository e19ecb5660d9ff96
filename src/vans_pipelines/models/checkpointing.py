"""Activation (gradient) checkpointing of the project's models, through each library's own switch.

A transformer block's activations are dropped after its forward and recomputed in the backward: memory
holds one block's activations (plus each block's input) instead of all of them, for about one more forward
of compute (a third more per training step). Hugging Face models (Qwen2.5-VL, UMT5) take
``activation_checkpointing_enable`` (``gradient_checkpointing_enable`` before transformers 5), diffusers
models (Wan2.1's transformer) ``enable_gradient_checkpointing``; both use torch's non-reentrant
checkpoint, which works with frozen bases and LoRA adapters.
"""

from __future__ import annotations

import torch


def checkpoint_module(module: torch.nn.Module) -> bool:
    """Switch activation checkpointing on in ``module`` if its library supports it; whether it did."""
    if getattr(module, "supports_gradient_checkpointing", False):
        # transformers 5 renamed gradient_checkpointing_enable (kept until v6)
        enable = getattr(module, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return True
    if getattr(module, "_supports_gradient_checkpointing", False) and hasattr(
        module, "enable_gradient_checkpointing"
    ):
        module.enable_gradient_checkpointing()
        return True
    return False


def enable_activation_checkpointing(root: torch.nn.Module) -> list[str]:
    """Switch it on in every model registered under ``root`` (e.g. a LightningModule) that supports it;
    their names."""
    done: list[str] = []
    for name, module in root.named_modules():
        if any(name.startswith(f"{d}.") for d in done) or not name:
            continue
        if checkpoint_module(module):
            done.append(name)
    return done
