"""Qwen2.5-VL's vision attention as one batched SDPA call over its packed windows.

The vision tower attends within windows (and, in its full-attention blocks, within frames). Outside the
flash-attention kernels, transformers runs one SDPA call per window: a batch of 32 tiny clips makes 256
calls of 16 tokens per block, and their dispatch costs more than their arithmetic. When every window has
the same length, the packed sequence is a batch of windows, and one call computes the same attention:
the tiny default's SFT step (forward + backward) takes 0.67-0.70 of the time on two cores
(``benchmarks/vlm_attention.py``).

transformers hands the window boundaries (``cu_seq_lens_q``) only to implementations whose name holds
"flash", hence the registered name.
"""

from __future__ import annotations

from copy import deepcopy

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PretrainedConfig, PreTrainedModel

PACKED_VISION_ATTENTION = "flash_packed_sdpa"
"""The registered name (transformers passes varlen boundaries to names holding "flash")."""

_REPLACEABLE = {None, "sdpa", "eager"}


def packed_varlen_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    cu_seq_lens_q: torch.Tensor,
    scaling: float | None = None,
    dropout: float = 0.0,
    **_: object,
) -> tuple[torch.Tensor, None]:
    """Bidirectional attention within each packed segment of ``query/key/value`` ``[1, heads, tokens, dim]``
    (segment ``i`` spans ``cu_seq_lens_q[i]:cu_seq_lens_q[i + 1]``); returns ``[1, tokens, heads, dim]``
    as transformers' attention functions do. Equal segments go through one SDPA call as a batch; otherwise
    one call per segment, as transformers' SDPA path does."""
    if attention_mask is not None:
        raise ValueError("packed vision attention takes segment boundaries, not an attention mask")
    _, heads, tokens, dim = query.shape
    lengths = cu_seq_lens_q[1:] - cu_seq_lens_q[:-1]
    segments = lengths.numel()
    if bool((lengths == lengths[0]).all()):
        length = tokens // segments

        def windows(t: torch.Tensor) -> torch.Tensor:
            return t[0].view(heads, segments, length, dim).transpose(0, 1)

        out = F.scaled_dot_product_attention(
            windows(query), windows(key), windows(value), dropout_p=dropout, scale=scaling
        )  # [segments, heads, length, dim]
        return out.permute(0, 2, 1, 3).reshape(1, tokens, heads, dim), None
    sizes = lengths.tolist()
    parts = [
        F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling)
        for q, k, v in zip(*(t.split(sizes, dim=2) for t in (query, key, value)), strict=True)
    ]
    return torch.cat(parts, dim=2).transpose(1, 2), None


AttentionInterface.register(PACKED_VISION_ATTENTION, packed_varlen_sdpa)


def use_packed_vision_attention(model: PreTrainedModel) -> None:
    """Route the vision tower of a Qwen2.5-VL ``model`` through :func:`packed_varlen_sdpa` when it uses
    SDPA or eager attention (a flash-attention kernel the user chose is kept)."""
    vision = getattr(model.config, "vision_config", None)
    if vision is not None and vision._attn_implementation in _REPLACEABLE:
        model.set_attn_implementation({"vision_config": PACKED_VISION_ATTENTION})


def portable_config(config: PretrainedConfig) -> PretrainedConfig:
    """A copy of ``config`` whose vision tower names transformers' SDPA: transformers would look for a
    flash-attention package when building a model from a config that names the packed attention."""
    config = deepcopy(config)
    vision = getattr(config, "vision_config", None)
    if vision is not None and vision._attn_implementation == PACKED_VISION_ATTENTION:
        vision._attn_implementation = "sdpa"
    return config
