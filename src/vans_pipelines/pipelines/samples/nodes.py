"""Samples node: each split's triplets joined with the caption stage's captions, in memory (the triplets'
clips are read when a sample is)."""

from __future__ import annotations

import pandas as pd

from vans_pipelines.samples import SplitSamples, TripletSamples, captions_by_id
from vans_pipelines.triplets import TripletSet


def make_samples(
    train: TripletSet, val: TripletSet, test: TripletSet, captions: pd.DataFrame, fps: float
) -> SplitSamples:
    """Every split's samples with their captions; a sample without a caption is an error naming it."""
    by_id = captions_by_id(captions)
    return SplitSamples(
        TripletSamples(train, by_id), TripletSamples(val, by_id), TripletSamples(test, by_id), fps
    )
