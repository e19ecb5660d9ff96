"""The ablation report's arithmetic on hand-made evaluations: seeds combined, references repeated, claims
judged by the paired difference and the training seeds' agreement, proxies correlated with the oracle."""

import numpy as np
import pandas as pd
import pytest

from vans_pipelines.evaluation.ablation import (
    Claim,
    check_claim,
    combine_seeds,
    flat_ablation_summary,
    proxy_correlations,
    summarise_recipes,
)
from vans_pipelines.evaluation.ablation_report import ablation_markdown
from vans_pipelines.evaluation.systems import Evaluation, Reference

N = 40  # test samples


def evaluation(events: dict[str, np.ndarray], clip_v: dict[str, np.ndarray] | None = None) -> Evaluation:
    """One training seed's evaluation: per system, per-sample oracle verdicts (one noise seed)."""
    summary, rows = {}, []
    for name, event in events.items():
        n = len(event)
        cv = (clip_v or {}).get(name, np.linspace(0, 1, n))
        metrics = {
            "event_accuracy": {"mean": float(event.mean()), "std": 0.0, "per_seed": [float(event.mean())]},
            "clip_v": {"mean": float(cv.mean()), "std": 0.0, "per_seed": [float(cv.mean())]},
            "fvd": {"mean": 1.0, "std": 0.0, "per_seed": [1.0]},
        }
        summary[name] = {"label": name, "vlm": "sft", "vdm": "sft", "ranked": True, "metrics": metrics}
        rows.append(
            pd.DataFrame(
                {
                    "system": name,
                    "sample_id": [f"s{i}" for i in range(n)],
                    "seed": 0,
                    "event": event,
                    "clip_v": cv,
                }
            )
        )
    reference = Reference([f"s{i}" for i in range(n)], [], [], [], np.zeros(0), np.zeros(0))
    return Evaluation(summary, pd.concat(rows, ignore_index=True), {}, reference)


def verdicts(rate: float, n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < rate).astype(float)


def test_references_are_evaluated_once_and_repeated_for_every_training_seed():
    sft = verdicts(0.2)
    per_seed = {
        0: evaluation({"a": verdicts(0.5, seed=1), "sft_cascade": sft}),
        1: evaluation({"a": verdicts(0.6, seed=2)}),
    }
    summary, samples = combine_seeds(per_seed)
    a, ref = summary["a"]["metrics"]["event_accuracy"], summary["sft_cascade"]["metrics"]["event_accuracy"]
    assert len(a["per_training_seed"]) == len(ref["per_training_seed"]) == 2
    assert ref["per_training_seed"] == [pytest.approx(sft.mean())] * 2 and ref["std"] == 0
    assert a["mean"] == pytest.approx(np.mean(a["per_training_seed"]))
    assert a["std"] == pytest.approx(np.std(a["per_training_seed"]))
    # Reference rows once (averaging per sample is unchanged by repeats), recipe rows per seed.
    assert len(samples[samples["system"] == "sft_cascade"]) == N
    assert sorted(samples[samples["system"] == "a"]["training_seed"].unique()) == [0, 1]


def test_a_claim_holds_only_beyond_two_standard_errors_with_every_seed_agreeing():
    base = np.zeros(N)
    better = np.zeros(N)
    better[:20] = 1  # +0.5, far beyond two SE
    per_seed = {0: evaluation({"ours": better, "base": base}), 1: evaluation({"ours": better, "base": base})}
    summary, samples = combine_seeds(per_seed)
    higher = Claim("ours beats base", "ours", "base", "event_accuracy", "higher")
    result = check_claim(higher, summary, samples)
    assert result["verdict"] == "holds" and result["delta"] == pytest.approx(0.5)
    assert result["seeds_agreeing"] == 2 and result["per_training_seed"] == [0.5, 0.5]
    lower = Claim("ours is below base", "ours", "base", "event_accuracy", "lower")
    assert check_claim(lower, summary, samples)["verdict"] == "does not hold"
    # A large mean difference that one training seed contradicts is not resolved.
    per_seed[1] = evaluation({"ours": np.zeros(N), "base": np.r_[np.ones(5), np.zeros(N - 5)]})
    summary, samples = combine_seeds(per_seed)
    result = check_claim(higher, summary, samples)
    assert result["seeds_agreeing"] == 1 and result["verdict"] == "not resolved"
    # One sample's difference is within noise.
    tiny = base.copy()
    tiny[0] = 1
    summary, samples = combine_seeds({0: evaluation({"ours": tiny, "base": base})})
    assert check_claim(higher, summary, samples)["verdict"] == "not resolved"
    assert check_claim(Claim("x", "missing", "base", "event_accuracy", "higher"), summary, samples) is None


def test_proxy_correlation_is_the_point_biserial_r_of_proxy_and_verdict():
    event = verdicts(0.5, n=200, seed=3)
    tracking = event * 0.5 + np.random.default_rng(4).random(200) * 0.1  # follows the verdict
    noise = np.random.default_rng(5).random(200)
    _, samples = combine_seeds(
        {0: evaluation({"good": event, "bad": event}, {"good": tracking, "bad": noise})}
    )
    good = proxy_correlations(samples, ["good"])["clip_v"]
    bad = proxy_correlations(samples, ["bad"])["clip_v"]
    assert good["r"] == pytest.approx(np.corrcoef(tracking, event)[0, 1]) and good["r"] > 0.9
    assert good["low"] < good["r"] < good["high"] and good["n"] == 200
    assert abs(bad["r"]) < 0.2 and bad["low"] < 0 < bad["high"]


def test_the_summary_report_and_dvc_metrics_of_an_ablation():
    per_seed = {
        s: evaluation(
            {
                "two_stage": verdicts(0.4, seed=s),
                "vlm_only": verdicts(0.3, seed=10 + s),
                "sft_cascade": verdicts(0.2),
            }
        )
        for s in (0, 1, 2)
    }
    trained = {"two_stage/seed_0": {}}
    figures, _ = summarise_recipes(per_seed, "two_stage", {"run": {"steps": 1}}, trained, 12.0)
    assert figures["training_seeds"] == [0, 1, 2] and figures["samples"] == N
    assert {c["claim"] for c in figures["claims"]} == {
        "Stage 1 alone (VLM-only GRPO) adds over SFT",
        "Joint-GRPO (two stages) adds over SFT",
        "Two stages beat VLM-only GRPO",
    }  # claims about recipes that did not run are left out
    assert set(figures["comparisons"]) == {"vlm_only", "sft_cascade"}
    flat = flat_ablation_summary(figures)
    assert flat["vlm_only_vs_two_stage.event_accuracy"] == pytest.approx(
        figures["comparisons"]["vlm_only"]["event_accuracy"]["delta"], abs=1e-5
    )
    text = ablation_markdown(figures)
    assert "| Two stages beat VLM-only GRPO |" in text and "## A verifiable reward" in text
