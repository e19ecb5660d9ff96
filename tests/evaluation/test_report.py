import numpy as np
import pandas as pd

from vans_pipelines.evaluation import report


def summary():
    def metric(mean, std=0.0):
        return {"mean": mean, "std": std, "per_seed": [mean - std, mean + std]}

    return {
        "sft_cascade": {
            "label": "SFT cascade",
            "vdm": "sft",
            "metrics": {"rouge_l": metric(0.40), "clip_v": metric(0.20, 0.01), "fvd": metric(2.0, 0.1)},
        },
        "joint_grpo": {
            "label": "Joint-GRPO",
            "vdm": "grpo",
            "metrics": {"rouge_l": metric(0.45), "clip_v": metric(0.25, 0.01), "fvd": metric(1.5, 0.1)},
        },
    }


def test_report_names_the_winner_the_extractor_and_labels_the_papers_table():
    best = {"rouge_l": ["joint_grpo"], "clip_v": ["joint_grpo"], "fvd": ["joint_grpo"]}
    comparison = {
        "rouge_l": {"ours": 0.45, "baseline": 0.4, "delta": 0.05, "standard_error": 0.01, "pairs": 8},
        "fvd": {"ours": 1.5, "baseline": 2.0, "delta": -0.5, "standard_error": 0.3, "pairs": 2},
    }
    comparison["rouge_l"]["verdict"], comparison["fvd"]["verdict"] = "ahead", "within noise"
    text = report.markdown_report(
        summary(),
        best,
        comparison=comparison,
        feature_extractor="TinyScorer embeddings",
        seeds=[0, 1],
        num_samples=8,
        scorer="Tiny",
        files={},
    )
    assert "Joint-GRPO: best (or tied best) on 3 metric(s)" in text
    assert "FVD feature extractor: TinyScorer embeddings" in text
    assert "**0.4500**" in text and "**1.5000 ± 0.1000**" in text
    assert (
        "ROUGE-L: Joint-GRPO 0.4500 vs SFT cascade 0.4000 (+0.0500 ± 0.0100 SE over 8 paired samples): "
        "**ahead**" in text
    )
    assert (
        "FVD ↓: Joint-GRPO 1.5000 vs SFT cascade 2.0000 (-0.5000 ± 0.3000 SE over 2 per-seed pairs): "
        "**within noise**" in text
    )
    assert "The paper's reported figures (its own data and models, not this run)" in text
    assert "| procedural | Joint-GRPO (VANS) | 0.3631 | 78.32 | 0.8021 | 0.3824 |" in text


def test_system_table_has_one_row_per_metric_and_a_column_per_seed():
    table = report.system_table(summary()["joint_grpo"])
    assert list(table.columns) == ["metric", "mean", "std", "seed_0", "seed_1"]
    assert table.set_index("metric").loc["fvd", "seed_1"] == 1.6


def test_video_grid_rows_columns_and_timing():
    rng = np.random.default_rng(0)
    contexts = rng.integers(0, 255, (2, 3, 8, 8, 3), dtype=np.uint8)
    targets = rng.integers(0, 255, (2, 4, 8, 8, 3), dtype=np.uint8)
    answers = {"a": targets.copy(), "b": targets.copy()}
    grid = report.video_grid(contexts, targets, answers, scale=2, gap=2)
    assert grid.dtype == np.uint8 and grid.shape[0] == 3 + 4
    cell = grid[:, 14 : 14 + 16]  # first row below the header, first column (the context)
    assert np.array_equal(cell[0, :, :16], contexts[0, 0].repeat(2, 0).repeat(2, 1))
    assert np.array_equal(cell[-1, :, :16], contexts[0, -1].repeat(2, 0).repeat(2, 1))  # held
    assert grid.shape[1] % 2 == 0 and grid.shape[2] % 2 == 0


def test_plots_are_figures_even_without_curves():
    assert report.plot_metric_bars(summary()).axes
    empty = pd.DataFrame(columns=["stage", "run", "tag", "step", "value"])
    assert report.training_curves_figure(empty).axes


def test_curves_of_runs_keeps_only_the_runs_the_stage_reports_name():
    rows = [
        ("grpo_vlm", "2026-12-01T10.00.00", "reward/total/mean", 0, 1.0),  # a previous run, left behind
        ("grpo_vlm", "2026-12-02T09.00.00", "reward/total/mean", 0, 2.0),
        ("grpo_vdm", "2026-12-02T09.00.00", "reward/total/mean", 0, 3.0),
        ("sft_vdm", "2026-12-02T09.00.00", "train/loss", 0, 4.0),
    ]
    curves = pd.DataFrame(rows, columns=["stage", "run", "tag", "step", "value"])
    reports = {
        "grpo_vlm": {"tensorboard": "data/07_model_output/tensorboard/2026-12-02T09.00.00/grpo_vlm"},
        "grpo_vdm": {"tensorboard": "/abs/tensorboard/2026-12-02T09.00.00/grpo_vdm"},
    }
    kept = report.curves_of_runs(curves, reports)
    assert kept["value"].tolist() == [2.0, 3.0]
    assert report.curves_of_runs(curves, {"grpo_vlm": {"tensorboard": None}}).empty


def test_flat_summary_is_one_level_of_numbers():
    metrics = {
        "systems": {
            "joint_grpo": {"metrics": {"clip_v": {"mean": 0.81, "std": 0.01, "per_seed": [0.8, 0.82]}}},
            "vlm_only": {
                "metrics": {"rouge_l": {"mean": 0.6, "std": 0.0, "per_seed": [0.6]}, "bleu_1": {"mean": 1}}
            },
        },
        "joint_grpo_vs_sft_cascade": {"clip_v": {"delta": 0.013, "verdict": "ahead", "pairs": 256}},
    }
    flat = report.flat_summary(metrics)
    assert flat == {
        "joint_grpo.clip_v": 0.81,
        "vlm_only.rouge_l": 0.6,
        "joint_grpo_vs_sft_cascade.clip_v": 0.013,
    }
    assert all(isinstance(v, float) for v in flat.values())
