"""The reward registry: every Joint-GRPO reward is a plain function here, looked up by name.

A reward takes keyword arguments and returns a float tensor ``[N]``, one value per sample; it reads what
it needs and ignores the rest (``**_``). The arguments a caller passes:

- ``completions``: the VLM's raw outputs; ``captions``: the caption each sample's video was rendered from
  (the parsed VLM caption in stage 1, the anchor caption in stage 2);
- ``reference_captions`` / ``reference_videos``: the ground truth; ``videos``: the generated clips
  (uint8 ``[T, H, W, 3]``); ``contexts``: the input clips; ``events``: the world's true events (synthetic
  only); ``scorer``: the :class:`~vans_pipelines.models.scorer.VideoTextScorer`.

Weights come from the parameters (``grpo_vlm.rewards``, ``grpo_vdm.rewards``); :func:`compute_rewards`
checks every value is finite and names the reward when one is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from vans_pipelines.metrics import caption_event_scores, oracle_event_scores, rouge_l
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.scorer import VideoTextScorer, video_text_similarity, video_video_similarity

RewardFn = Callable[..., torch.Tensor]
REWARDS: dict[str, RewardFn] = {}
#: Rewards that read the generated video: a stage-1 rollout renders only when one of them has a weight.
VIDEO_REWARDS = frozenset({"video_fidelity", "semantic_alignment", "context_consistency", "oracle_event"})


class RewardError(ValueError):
    """A reward is unknown or returned values that are not finite."""


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    def add(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = fn
        return fn

    return add


@register("format")
def format_reward(completions: Sequence[str], **_: Any) -> torch.Tensor:
    """1 when the output parses into ``[Think] reasoning [/Think] [Ans] caption [/Ans]``, else 0.

    >>> format_reward(["[Think] it tilts [/Think] [Ans] The cup falls. [/Ans]", "The cup falls."]).tolist()
    [1.0, 0.0]
    """
    return torch.tensor([float(parse_answer(c).well_formed) for c in completions])


@register("text_fidelity")
def text_fidelity(captions: Sequence[str], reference_captions: Sequence[str], **_: Any) -> torch.Tensor:
    """ROUGE-L F1 of each caption against the ground-truth caption.

    >>> text_fidelity(["the red square falls"], ["The red square falls."]).tolist()
    [1.0]
    """
    return torch.from_numpy(rouge_l(captions, reference_captions)).float()


@register("video_fidelity")
def video_fidelity(
    videos: Sequence[np.ndarray],
    reference_videos: Sequence[np.ndarray],
    scorer: VideoTextScorer,
    **_: Any,
) -> torch.Tensor:
    """CLIP-V: cosine similarity of each generated clip with the ground-truth next clip under the scorer.

    >>> from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
    >>> from vans_pipelines.models.tokenizer import build_word_tokenizer
    >>> scorer = TinyScorer.build(build_word_tokenizer(["a red square"]), TinyScorerSpec())
    >>> clip = np.full((4, 16, 16, 3), 200, np.uint8)
    >>> round(video_fidelity([clip], [clip], scorer=scorer).item(), 4)  # a clip is its own best match
    1.0
    """
    return video_video_similarity(scorer, list(videos), list(reference_videos)).float().cpu()


@register("semantic_alignment")
def semantic_alignment(
    videos: Sequence[np.ndarray], captions: Sequence[str], scorer: VideoTextScorer, **_: Any
) -> torch.Tensor:
    """CLIP-T: cosine similarity of each generated clip with the caption it was generated from. Without
    it stage 2 can drift towards still frames that merely look like the target (the paper's reward hack).

    >>> from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
    >>> from vans_pipelines.models.tokenizer import build_word_tokenizer
    >>> scorer = TinyScorer.build(build_word_tokenizer(["a red square"]), TinyScorerSpec())
    >>> clip = np.zeros((4, 16, 16, 3), np.uint8)
    >>> -1.0 <= semantic_alignment([clip], ["a red square"], scorer=scorer).item() <= 1.0
    True
    """
    return video_text_similarity(scorer, list(videos), list(captions)).float().cpu()


@register("context_consistency")
def context_consistency(
    videos: Sequence[np.ndarray], contexts: Sequence[np.ndarray], scorer: VideoTextScorer, **_: Any
) -> torch.Tensor:
    """Does the answer continue the input scene? Similarity under the scorer of the first generated frame
    and the last context frame (each held as a still clip).

    >>> from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
    >>> from vans_pipelines.models.tokenizer import build_word_tokenizer
    >>> scorer = TinyScorer.build(build_word_tokenizer(["a red square"]), TinyScorerSpec())
    >>> context = np.full((4, 16, 16, 3), 90, np.uint8)
    >>> round(context_consistency([context], [context], scorer=scorer).item(), 4)
    1.0
    """
    firsts = [np.repeat(np.asarray(v)[:1], 2, axis=0) for v in videos]
    lasts = [np.repeat(np.asarray(c)[-1:], 2, axis=0) for c in contexts]
    return video_video_similarity(scorer, firsts, lasts).float().cpu()


@register("oracle_event")
def oracle_event(videos: Sequence[np.ndarray], events: Sequence[Any], **_: Any) -> torch.Tensor:
    """Synthetic world only: 1 when the world's oracle reads the expected event (right object, right
    action) from the generated clip. For analysis; its training weight is 0 by default.

    >>> from vans_pipelines.world.events import Event
    >>> oracle_event([np.zeros((4, 16, 16, 3), np.uint8)], [Event("fall", "red square")]).tolist()
    [0.0]
    """
    return torch.from_numpy(oracle_event_scores(list(videos), list(events))["event"]).float()


@register("caption_event")
def caption_event(captions: Sequence[str], events: Sequence[Any], **_: Any) -> torch.Tensor:
    """Synthetic world only: 1 when the caption names exactly the expected event (right object, right
    action), read by the world's caption parser. The verifiable text-side counterpart of
    :func:`oracle_event`; for analysis, weight 0 by default.

    >>> from vans_pipelines.world.events import Event
    >>> falls = Event("fall", "red square")
    >>> caption_event(["The red square falls and lands on the floor."], [falls]).tolist()
    [1.0]
    """
    return torch.from_numpy(caption_event_scores(list(captions), list(events))).float()


def check_reward_names(weights: Mapping[str, float], key: str) -> list[str]:
    """Config errors of a ``{reward: weight}`` mapping (unknown names, negative or non-finite weights)."""
    errors = []
    for name, weight in weights.items():
        if name not in REWARDS:
            errors.append(f"{key}.{name}: unknown reward (known: {', '.join(sorted(REWARDS))})")
        elif not np.isfinite(weight) or weight < 0:
            errors.append(f"{key}.{name}: weight must be a finite number >= 0, got {weight}")
    if not errors and not any(w > 0 for w in weights.values()):
        errors.append(f"{key}: at least one reward needs a weight > 0")
    return errors


def compute_rewards(names: Sequence[str], **inputs: Any) -> dict[str, torch.Tensor]:
    """Each named reward on ``inputs``; :class:`RewardError` naming the reward on NaN / inf values."""
    out = {}
    for name in names:
        if name not in REWARDS:
            raise RewardError(f"unknown reward {name!r} (known: {', '.join(sorted(REWARDS))})")
        values = torch.as_tensor(REWARDS[name](**inputs), dtype=torch.float32).reshape(-1)
        bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
        if bad:
            raise RewardError(
                f"reward {name!r} returned non-finite values for samples {bad[:5]} "
                f"(e.g. {values[bad[0]].item()}); refusing to train on them"
            )
        out[name] = values
    return out


def total_reward(rewards: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """The weighted sum the policy is scored by (for reports; advantages come from ``rl.grpo``)."""
    names = [n for n in rewards if weights.get(n, 0.0)]
    return sum(weights[n] * rewards[n] for n in names)
