"""Shared by the training tests: a small captioned world, and a callback that simulates a crash."""

from __future__ import annotations

import json

from lightning.pytorch.callbacks import Callback

from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.world import reasoning_for, render_split
from vans_pipelines.world.events import Event


def captioned_world(num_train: int, num_val: int, **geometry):
    """(train triplets, val triplets, {sample_id: (caption, reasoning)}, word tokenizer) of seed 0."""
    train, val = render_split(0, "train", num_train, **geometry), render_split(0, "val", num_val, **geometry)
    captions = {}
    for ts in (train, val):
        for r in ts.index.itertuples():
            event = Event.from_dict(json.loads(r.event))
            captions[r.sample_id] = (r.caption, reasoning_for(r.family, event, json.loads(r.state)))
    tokenizer = build_word_tokenizer(
        [t for pair in captions.values() for t in pair] + list(train.index.question)
    )
    return train, val, captions, tokenizer


class CrashAt(Callback):
    """Raises once training reaches ``step`` (a killed run, for resume tests)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            raise RuntimeError("simulated crash")
