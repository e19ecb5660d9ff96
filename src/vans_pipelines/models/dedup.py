"""Batches that repeat an input (a caption, a context clip) encode it once: the rows to encode and where
each row finds its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def first_occurrences(keys: Sequence[Any]) -> tuple[list[int], torch.Tensor]:
    """The positions of each distinct key's first occurrence, and for every key the index of its own
    among them: ``[keys[i] for i in rows][index[j]] == keys[j]``."""
    slot: dict[Any, int] = {}
    rows, index = [], []
    for j, key in enumerate(keys):
        if key not in slot:
            slot[key] = len(rows)
            rows.append(j)
        index.append(slot[key])
    return rows, torch.tensor(index, dtype=torch.long)
