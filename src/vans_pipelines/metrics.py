"""Metrics shared by training reports and evaluation: text (rouge-score), pixels, the world's oracle."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from rouge_score import rouge_scorer

from vans_pipelines.world.events import Event
from vans_pipelines.world.oracle import read_event

_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L F1 of each prediction against its reference (rouge-score, lower-cased words).

    >>> rouge_l(["the red square falls"], ["The red square falls."]).tolist()
    [1.0]
    """
    return np.array(
        [
            _ROUGE.score(ref, pred)["rougeL"].fmeasure
            for pred, ref in zip(predictions, references, strict=True)
        ]
    )


def pixel_mse(videos: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Mean squared error per clip, pixels scaled to [0, 1]."""
    a = np.asarray(videos, dtype=np.float32) / 255.0
    b = np.asarray(references, dtype=np.float32) / 255.0
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def oracle_event_scores(
    videos: Sequence[np.ndarray], events: Sequence[str | dict | Event]
) -> dict[str, np.ndarray]:
    """Per clip: does the oracle read back exactly the expected event (``event``), and its kind (``kind``)?"""
    exact, kind = [], []
    for clip, expected in zip(videos, events, strict=True):
        if isinstance(expected, str):
            expected = json.loads(expected)
        if isinstance(expected, dict):
            expected = Event.from_dict(expected)
        seen = read_event(np.asarray(clip))
        exact.append(float(seen == expected))
        kind.append(float(seen is not None and seen.kind == expected.kind))
    return {"event": np.array(exact), "kind": np.array(kind)}
