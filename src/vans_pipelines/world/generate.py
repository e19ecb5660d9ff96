"""Render VNEP samples of the synthetic world, seeded and deterministic.

Sample ``i`` of split ``s`` depends only on ``(seed, s, i)`` and the clip geometry: growing the train
split does not change the val or test samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from vans_pipelines.triplets import QUESTIONS, SPLITS, TripletSet
from vans_pipelines.world.captions import event_caption
from vans_pipelines.world.events import EVENT_KINDS, PREDICTIVE_EPISODES, Episode, Event, procedural_episode
from vans_pipelines.world.scene import render_clip


@dataclass(frozen=True)
class WorldSample:
    sample_id: str
    family: str
    question: str
    caption: str
    event: Event
    state: dict[str, Any]
    context: np.ndarray  # uint8 [Tc, H, W, 3]
    target: np.ndarray  # uint8 [T, H, W, 3]


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index])


def render_sample(
    seed: int,
    split: str,
    index: int,
    *,
    context_frames: int,
    target_frames: int,
    height: int,
    width: int,
    families: tuple[str, ...] = ("procedural", "predictive"),
) -> WorldSample:
    """Render sample ``index`` of ``split``. Families and event kinds are drawn uniformly."""
    rng = sample_rng(seed, split, index)
    family = str(families[int(rng.integers(len(families)))])
    kinds = EVENT_KINDS[family]
    kind = kinds[int(rng.integers(len(kinds)))]
    aspect = height / width
    episode: Episode
    if family == "procedural":
        # Target step k+1 = kind: place is step 2 (k=1), paint 3, stack 4, remove 5.
        steps_shown = {"place": 1, "paint": 2, "stack": 3, "remove": 4}[kind]
        episode = procedural_episode(rng, context_frames, target_frames, aspect, steps_shown)
    else:
        episode = PREDICTIVE_EPISODES[kind](rng, context_frames, target_frames, aspect)
    questions = QUESTIONS[family]
    return WorldSample(
        sample_id=f"world-{split}-{index:06d}",
        family=family,
        question=questions[int(rng.integers(len(questions)))],
        caption=event_caption(episode.event, rng),
        event=episode.event,
        state=episode.state,
        context=render_clip(episode.layout, episode.context, height, width),
        target=render_clip(episode.layout, episode.target, height, width),
    )


def render_split(
    seed: int,
    split: str,
    count: int,
    *,
    context_frames: int,
    target_frames: int,
    height: int,
    width: int,
    families: tuple[str, ...] = ("procedural", "predictive"),
) -> TripletSet:
    """``count`` samples of ``split`` as a :class:`TripletSet` (event and state kept as JSON columns)."""
    rows, clips = [], []
    for i in range(count):
        s = render_sample(
            seed,
            split,
            i,
            context_frames=context_frames,
            target_frames=target_frames,
            height=height,
            width=width,
            families=families,
        )
        rows.append(
            {
                "sample_id": s.sample_id,
                "split": split,
                "family": s.family,
                "question": s.question,
                "caption": s.caption,
                "source": "synthetic",
                "event_kind": s.event.kind,
                "event": json.dumps(s.event.to_dict()),
                "state": json.dumps(s.state),
            }
        )
        clips.append((s.context, s.target))
    return TripletSet.from_arrays(rows, clips)
