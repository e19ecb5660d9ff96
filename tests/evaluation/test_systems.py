import numpy as np
import pandas as pd
import pytest
from sacrebleu.metrics import BLEU

from tests.training.worlds import captioned_world
from vans_pipelines.evaluation.comparison import paired_comparison, winners
from vans_pipelines.evaluation.features import ScorerFeatures
from vans_pipelines.evaluation.systems import SYSTEMS, caption_metrics, score_systems, system_by_name
from vans_pipelines.metrics import bleu, clip_motion, frechet_distance, motion
from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.samples import TripletSamples
from vans_pipelines.world.captions import PHRASINGS, all_captions, parse_caption
from vans_pipelines.world.events import Event


@pytest.fixture
def tiny_world():
    """Four captioned train samples of a 16-pixel world, and tiny random VLM, VDM and scorer."""
    train, _, captions, tokenizer = captioned_world(
        4, 4, height=16, width=16, context_frames=4, target_frames=4
    )
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    return TripletSamples(train, captions), vlm, vdm, TinyScorer.build(tokenizer, TinyScorerSpec())


def test_bleu_is_sacrebleus_corpus_bleu_in_unit_range():
    hyps = ["the red square falls to the floor", "paint the blue circle green"]
    refs = ["the red square falls and lands on the floor", "next paint the blue circle green"]
    for n in range(1, 5):
        expected = BLEU(max_ngram_order=n).corpus_score(hyps, [refs]).score / 100
        assert bleu(hyps, refs, n) == pytest.approx(expected)
    assert bleu(hyps, refs, 1) > bleu(hyps, refs, 4)
    with pytest.raises(ValueError, match="order"):
        bleu(hyps, refs, 5)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 2))
    b = rng.normal(size=(20000, 2)) * 2.0 + np.array([1.0, 0.0])
    # N(0, I) vs N((1, 0), 4I): |mu|^2 + tr(I + 4I - 2 * 2I) = 1 + 2 = 3
    assert frechet_distance(a, b) == pytest.approx(3.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="feature sets"):
        frechet_distance(a[:, :1], b)


@pytest.mark.parametrize("kind", sorted(PHRASINGS))
def test_every_world_phrasing_parses_back_to_its_event(kind):
    detail = {"paint": "blue", "stack": "green circle", "bounce": "left", "collide": "blue triangle"}.get(
        kind
    )
    event = Event(kind, "red square", detail)
    assert [parse_caption(c) for c in all_captions(event)] == [event] * len(PHRASINGS[kind])


def test_motion_is_the_mean_frame_change_per_clip_and_overall():
    still = np.full((1, 4, 2, 2, 3), 9, dtype=np.uint8)
    blink = np.zeros((1, 4, 2, 2, 3), dtype=np.uint8)
    blink[:, 1::2] = 255  # every frame-to-frame change is the full range
    per_clip, overall = clip_motion(np.concatenate([still, blink]))
    assert per_clip.tolist() == [0.0, 1.0] and overall == 0.5 == motion(np.concatenate([still, blink]))
    assert clip_motion(blink[:, :1])[1] == 0.0  # one frame: no change to measure


def test_caption_metrics_count_exact_events_only():
    events = [{"kind": "fall", "subject": "red square", "detail": None}] * 2
    summary, rouge, event_ok = caption_metrics(
        ["The red square lands on the floor.", "The blue square lands on the floor."],
        ["The red square falls and lands on the floor."] * 2,
        events,
    )
    assert event_ok.tolist() == [1.0, 0.0] and summary["caption_event_accuracy"] == 0.5
    assert summary["rouge_l"] == pytest.approx(rouge.mean()) and 0 < summary["bleu_4"] < summary["bleu_1"]


def test_winners_take_the_lowest_fvd_share_ties_and_skip_all_tied_or_unranked_metrics():
    def system(rouge, fvd):
        metrics = {"rouge_l": rouge, "fvd": fvd, "event_accuracy": 0.0, "motion": fvd}
        return {"metrics": {k: {"mean": v, "std": 0} for k, v in metrics.items()}}

    best = winners({"a": system(0.5, 3.0), "b": system(0.5, 1.0), "c": system(0.4, 2.0)})
    assert best == {"rouge_l": ["a", "b"], "fvd": ["b"]}


def test_paired_comparison_needs_two_standard_errors():
    def system(per_seed_fvd):
        return {
            "metrics": {
                "rouge_l": {"mean": 0.0, "std": 0.0, "per_seed": [0.0]},
                "clip_v": {"mean": 0.0, "std": 0.0, "per_seed": [0.0]},
                "fvd": {"mean": float(np.mean(per_seed_fvd)), "std": 0.0, "per_seed": per_seed_fvd},
            }
        }

    ids = [f"s{i}" for i in range(8)]
    rows = []
    for name, shift in (("ours", 1.0), ("base", 0.0)):
        for i, sample in enumerate(ids):
            rows.append(
                {"system": name, "sample_id": sample, "rouge_l": shift + (i % 2), "clip_v": (i % 2) * 3.0}
            )
    rows += [{"system": "ours", "sample_id": "s0", "rouge_l": np.nan, "clip_v": 99.0}]  # a second seed of s0
    table = pd.DataFrame(rows)
    out = paired_comparison({"ours": system([1.0, 1.2]), "base": system([2.0, 2.1])}, table, "ours", "base")
    assert out["rouge_l"]["delta"] == pytest.approx(1.0) and out["rouge_l"]["verdict"] == "ahead"
    assert out["rouge_l"]["standard_error"] == pytest.approx(0.0) and out["rouge_l"]["pairs"] == 8
    assert out["clip_v"]["verdict"] == "within noise"  # one sample's seeds averaged: (0 + 99) / 2 - 0
    assert out["fvd"]["delta"] == pytest.approx(-0.95) and out["fvd"]["pairs"] == 2
    assert out["fvd"]["verdict"] == "ahead"  # lower FVD, beyond 2 SE of the per-seed differences


def test_unknown_system_names_the_key():
    with pytest.raises(ValueError, match=r"evaluate\.systems: unknown"):
        system_by_name(["joint_grpo", "nope"])


@pytest.mark.slow
def test_systems_with_the_same_models_score_identically_and_seeds_vary_the_clips(tiny_world):
    samples, vlm, vdm, scorer = tiny_world
    systems = system_by_name(["vlm_only", "sft_cascade", "stage1_only"])
    result = score_systems(
        systems,
        {"sft": vlm, "grpo": vlm},
        {"sft": vdm, "grpo": vdm},
        samples,
        scorer,
        ScorerFeatures(scorer),
        seeds=[0, 1],
        num_steps=2,
        max_new_tokens=8,
        keep_clips=2,
    )
    cascade, stage1 = result.summary["sft_cascade"]["metrics"], result.summary["stage1_only"]["metrics"]
    assert cascade == stage1  # same VLM, same VDM, same noise per (seed, sample): a paired comparison
    assert "fvd" not in result.summary["vlm_only"]["metrics"]
    assert cascade["clip_v"]["per_seed"][0] != cascade["clip_v"]["per_seed"][1]
    assert len(result.samples) == 4 + 2 * 4 * 2
    assert result.answers["sft_cascade"].shape == (2, 4, 16, 16, 3)
    assert {"sft_cascade", "joint_grpo", "still_frame", "truth_caption_sft_vdm"} <= {s.name for s in SYSTEMS}


@pytest.mark.slow
def test_still_frame_holds_the_context_and_truth_caption_systems_are_shown_but_not_ranked(tiny_world):
    samples, _, vdm, scorer = tiny_world
    result = score_systems(
        system_by_name(["still_frame", "truth_caption_sft_vdm"]),
        {},
        {"sft": vdm},
        samples,
        scorer,
        ScorerFeatures(scorer),
        seeds=[0],
        num_steps=2,
        max_new_tokens=8,
        keep_clips=2,
    )
    still = result.answers["still_frame"]
    np.testing.assert_array_equal(still, np.repeat(result.reference.contexts[:2, -1:], 4, axis=1))
    for name in ("still_frame", "truth_caption_sft_vdm"):
        assert "rouge_l" not in result.summary[name]["metrics"]  # neither writes a caption
        assert "clip_v" in result.summary[name]["metrics"]
    assert result.summary["truth_caption_sft_vdm"]["ranked"] is False
    assert all("truth_caption_sft_vdm" not in names for names in winners(result.summary).values())


@pytest.mark.slow
def test_systems_sharing_a_vdm_render_a_caption_once_per_seed_with_the_figures_of_a_lone_render(
    tiny_world, monkeypatch
):
    samples, vlm, vdm, scorer = tiny_world
    settings = {"seeds": [0, 1], "num_steps": 2, "max_new_tokens": 8, "keep_clips": 2}
    alone = score_systems(
        system_by_name(["stage1_only"]),
        {"grpo": vlm},
        {"sft": vdm},
        samples,
        scorer,
        ScorerFeatures(scorer),
        **settings,
    )
    rendered, sample = [], vdm.sample
    monkeypatch.setattr(
        vdm, "sample", lambda texts, *a, **k: rendered.append(len(texts)) or sample(texts, *a, **k)
    )
    shared = score_systems(
        system_by_name(["sft_cascade", "stage1_only"]),
        {"sft": vlm, "grpo": vlm},
        {"sft": vdm},
        samples,
        scorer,
        ScorerFeatures(scorer),
        **settings,
    )
    assert rendered == [4, 4]  # one batch per seed: stage1_only's captions are sft_cascade's, same noise
    assert shared.summary["stage1_only"]["metrics"] == alone.summary["stage1_only"]["metrics"]
    np.testing.assert_array_equal(shared.answers["stage1_only"], alone.answers["stage1_only"])
    assert list(shared.samples["system"].unique()) == ["sft_cascade", "stage1_only"]
