"""Metrics shared by training reports and evaluation: text (rouge-score), pixels, the world's oracle."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from scipy import linalg

from vans_pipelines.world.captions import parse_caption
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


def bleu(predictions: Sequence[str], references: Sequence[str], max_order: int = 4) -> float:
    """Corpus BLEU@``max_order`` in [0, 1] (sacrebleu: geometric mean of the 1..n-gram precisions times the
    brevity penalty, 13a tokenisation), one reference per prediction.

    >>> round(bleu(["the red square falls"], ["the red square falls ."], max_order=2), 4)
    0.7788
    """
    if not 1 <= max_order <= 4:
        raise ValueError(f"BLEU order must be 1..4, got {max_order}")
    metric = BLEU(max_ngram_order=max_order)
    return metric.corpus_score(list(predictions), [list(references)]).score / 100.0


def frechet_distance(features: np.ndarray, reference_features: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``[N, D]`` (FID / FVD):
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. What it is *of* depends on the feature
    extractor, which every report must name (I3D features give the FVD papers quote).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(500, 3))
    >>> round(frechet_distance(a, a), 6)
    0.0
    >>> round(frechet_distance(a, a + 2.0), 3)  # a mean shift of 2 in 3 dimensions
    12.0
    """
    a, b = np.asarray(features, dtype=np.float64), np.asarray(reference_features, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two feature sets [N >= 2, D] of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr((S_a S_b)^(1/2)) = sum of sqrt(eig(S_a^(1/2) S_b S_a^(1/2))), a symmetric PSD form that stays
    # stable when the covariances are singular (fewer samples than dimensions).
    values, vectors = linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_root = np.sqrt(np.clip(linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(distance, 0.0))


def pixel_mse(videos: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Mean squared error per clip, pixels scaled to [0, 1]."""
    a = np.asarray(videos, dtype=np.float32) / 255.0
    b = np.asarray(references, dtype=np.float32) / 255.0
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def clip_motion(videos: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean absolute frame-to-frame change of uint8 clips ``[N, T, H, W, 3]``, in [0, 1], per clip and
    over all clips (one pass): the guard against the still-frame reward hack (a static answer scores 0)."""
    x = np.asarray(videos, dtype=np.float32) / 255.0
    if x.shape[1] < 2:
        return np.zeros(len(x)), 0.0
    change = np.abs(np.diff(x, axis=1))
    return change.mean(axis=(1, 2, 3, 4)), float(change.mean())


def motion(videos: np.ndarray) -> float:
    """:func:`clip_motion` over all clips."""
    return clip_motion(videos)[1]


def oracle_event_scores(
    videos: Sequence[np.ndarray], events: Sequence[str | dict | Event]
) -> dict[str, np.ndarray]:
    """Per clip: does the oracle read back exactly the expected event (``event``), and its kind (``kind``)?"""
    exact, kind = [], []
    for clip, value in zip(videos, events, strict=True):
        expected = Event.parse(value)
        seen = read_event(np.asarray(clip))
        exact.append(float(seen == expected))
        kind.append(float(seen is not None and seen.kind == expected.kind))
    return {"event": np.array(exact), "kind": np.array(kind)}


def caption_event_scores(captions: Sequence[str], events: Sequence[str | dict | Event]) -> np.ndarray:
    """Per caption: 1.0 when it names exactly the expected event (any of the world's phrasings), else 0.0.

    >>> falls = Event("fall", "red square")
    >>> caption_event_scores(["The red square falls and lands on the floor."], [falls]).tolist()
    [1.0]
    >>> caption_event_scores(["The blue square falls and lands on the floor."], [falls]).tolist()
    [0.0]
    """
    return np.array(
        [float(parse_caption(c) == Event.parse(e)) for c, e in zip(captions, events, strict=True)]
    )
