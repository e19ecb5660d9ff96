"""The reward registry: each reward on hand-made inputs, and non-finite values named, never zeroed."""

import numpy as np
import pytest
import torch

from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.rl import rewards as registry
from vans_pipelines.rl.rewards import REWARDS, RewardError, check_reward_names, compute_rewards, total_reward
from vans_pipelines.world import render_split


@pytest.fixture(scope="module")
def scorer():
    return TinyScorer.build(
        build_word_tokenizer(["a red square falls", "a blue circle bounces"]), TinyScorerSpec()
    )


def test_registry_holds_the_papers_rewards_and_the_oracles():
    assert set(REWARDS) == {
        "caption_event",
        "format",
        "text_fidelity",
        "video_fidelity",
        "semantic_alignment",
        "context_consistency",
        "oracle_event",
    }


def test_caption_event_reads_the_object_and_the_action():
    from vans_pipelines.world.events import Event

    events = [Event("fall", "red square")] * 3
    captions = [
        "The red square keeps falling until it hits the floor.",  # another phrasing: still right
        "The red circle falls and lands on the floor.",  # wrong object
        "[Ans] the red square [/Ans]",  # no event
    ]
    assert compute_rewards(["caption_event"], captions=captions, events=events)["caption_event"].tolist() == [
        1.0,
        0.0,
        0.0,
    ]


def test_format_and_text_fidelity():
    outputs = ["[Think] it tilts [/Think] [Ans] a red square falls [/Ans]", "[Ans] a blue circle [/Ans]"]
    assert compute_rewards(["format"], completions=outputs)["format"].tolist() == [1.0, 0.0]
    fidelity = compute_rewards(
        ["text_fidelity"],
        captions=["a red square falls", "a blue circle"],
        reference_captions=["a red square falls"] * 2,
    )["text_fidelity"]
    assert fidelity[0] == 1.0 and 0 < fidelity[1] < 1


def test_video_rewards_prefer_the_matching_clip(scorer):
    world = render_split(0, "val", 2, context_frames=4, target_frames=4, height=32, width=32)
    a, b = world[0].target, world[1].target
    same = compute_rewards(["video_fidelity"], videos=[a, b], reference_videos=[a, a], scorer=scorer)
    assert same["video_fidelity"][0] == pytest.approx(1.0, abs=1e-5)
    assert same["video_fidelity"][1] < same["video_fidelity"][0]
    consistency = compute_rewards(
        ["context_consistency"],
        videos=[world[0].context[-1:].repeat(4, 0)],
        contexts=[world[0].context],
        scorer=scorer,
    )
    assert consistency["context_consistency"].item() == pytest.approx(1.0, abs=1e-5)
    alignment = compute_rewards(
        ["semantic_alignment"], videos=[a, b], captions=["a red square falls"] * 2, scorer=scorer
    )
    assert alignment["semantic_alignment"].shape == (2,)


def test_oracle_event_reads_the_true_clip_as_correct():
    world = render_split(0, "val", 3, context_frames=4, target_frames=8, height=32, width=32)
    events = list(world.index["event"])
    values = compute_rewards(["oracle_event"], videos=[t.target for t in world], events=events)[
        "oracle_event"
    ]
    assert values.tolist() == [1.0, 1.0, 1.0]
    blank = compute_rewards(["oracle_event"], videos=[np.zeros_like(world[0].target)], events=events[:1])
    assert blank["oracle_event"].tolist() == [0.0]


def test_non_finite_rewards_are_an_error_naming_the_reward(monkeypatch):
    monkeypatch.setitem(REWARDS, "format", lambda **_: torch.tensor([0.5, float("nan")]))
    with pytest.raises(RewardError, match=r"reward 'format' returned non-finite values for samples \[1\]"):
        compute_rewards(["format"], completions=["a", "b"])
    monkeypatch.setitem(REWARDS, "format", lambda **_: torch.tensor([float("inf")]))
    with pytest.raises(RewardError, match="'format'"):
        compute_rewards(["format"], completions=["a"])
    with pytest.raises(RewardError, match="unknown reward 'nope'"):
        compute_rewards(["nope"])


def test_weight_checks_name_the_key():
    assert check_reward_names({"format": 1.0}, "grpo_vlm.rewards") == []
    errors = check_reward_names({"format": -1.0, "bleu": 1.0}, "grpo_vlm.rewards")
    assert any(e.startswith("grpo_vlm.rewards.format: weight must be") for e in errors)
    assert any(e.startswith("grpo_vlm.rewards.bleu: unknown reward") for e in errors)
    assert check_reward_names({"format": 0.0}, "k") == ["k: at least one reward needs a weight > 0"]


def test_total_reward_is_the_weighted_sum():
    values = {"format": torch.tensor([1.0, 0.0]), "text_fidelity": torch.tensor([0.5, 1.0])}
    assert total_reward(values, {"format": 0.2, "text_fidelity": 1.0}).tolist() == pytest.approx([0.7, 1.0])
    assert registry.total_reward(values, {"format": 0.0, "text_fidelity": 2.0}).tolist() == [1.0, 2.0]
