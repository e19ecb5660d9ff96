"""Samples node: each split's triplets joined with the caption stage's captions, in memory (the triplets'
clips are read when a sample is)."""

from __future__ import annotations

import pandas as pd

from vans_pipelines.samples import SplitSamples, TripletSamples, captions_by_id
from vans_pipelines.triplets import TripletSet


def make_samples(
    train: TripletSet,
    val: TripletSet,
    test: TripletSet,
    captions: pd.DataFrame,
    fps: float,
    read_workers: int = 0,
    cache_mb: float = 0,
) -> SplitSamples:
    """Every split's samples with their captions, read by evaluation loops in ``read_workers`` processes
    (``run.inference.read_workers``) and kept in memory once read up to ``cache_mb`` MiB per split
    (``run.sample_cache_mb``); a sample without a caption is an error naming it."""
    by_id = captions_by_id(captions)
    splits = (TripletSamples(split, by_id, read_workers, cache_mb) for split in (train, val, test))
    return SplitSamples(*splits, fps)
