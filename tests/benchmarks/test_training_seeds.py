"""benchmarks/training_seeds.py, run as a user runs it (``--smoke``: tiny stage sizes) on a tiny finished
project: one stage run per training seed in a throw-away copy, stage 2 judged on the test split too."""

import json
from pathlib import Path

import pytest

from tests.benchmarks.conftest import run_benchmark


def tensorboard_runs(project: Path) -> list[Path]:
    tensorboard = project / "data" / "07_model_output" / "tensorboard"
    return sorted(tensorboard.iterdir()) if tensorboard.exists() else []


@pytest.mark.experiment
def test_a_stage1_sweep_runs_once_per_seed_from_the_same_model_and_leaves_the_project_alone(
    finished_run, tmp_path
):
    before = tensorboard_runs(finished_run)
    out = tmp_path / "rows.json"
    done = run_benchmark(
        "training_seeds",
        "--stage",
        "grpo_vlm",
        "--seeds",
        "0,1",
        "--project",
        str(finished_run),
        "--smoke",
        "--params",
        "grpo_vlm.optim.lr=1e-3",
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    rows = record["figures"]["rows"]
    assert [r["seed"] for r in rows] == [0, 1]
    assert rows[0]["before"] == rows[1]["before"]  # the same SFT model and eval noise before training
    assert record["figures"]["params"]["grpo_vlm"]["optim"]["lr"] == 0.001  # --params, numbers as numbers
    assert "beats the eval-seed spread in" in done.stderr and "of 2" in done.stderr
    assert tensorboard_runs(finished_run) == before


@pytest.mark.experiment
def test_a_stage2_seed_is_judged_on_the_test_split_against_its_sft_vdm(finished_run, tmp_path):
    overrides = tmp_path / "overrides.yml"
    overrides.write_text("grpo_vdm:\n  eval:\n    seeds: [0, 1]\n")  # a list: what --params cannot give
    out = tmp_path / "rows.json"
    done = run_benchmark(
        "training_seeds",
        "--stage",
        "grpo_vdm",
        "--seeds",
        "1",
        "--project",
        str(finished_run),
        "--smoke",
        "--test",
        "--params-file",
        str(overrides),
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    (row,) = record["figures"]["rows"]
    assert record["figures"]["params"]["grpo_vdm"]["eval"]["seeds"] == [0, 1]
    assert row["test_gain"] == pytest.approx(row["test_grpo"] - row["test_sft"]) and row["test_gain_se"] >= 0
    assert 0 <= row["test_sft"] <= 1 and 0 <= row["test_grpo"] <= 1
    assert "paired gain" in done.stderr


def test_bad_arguments_are_named(tmp_path):
    done = run_benchmark("training_seeds", "--stage", "sft")
    assert done.returncode == 2 and "argument --stage: invalid choice: 'sft'" in done.stderr
    done = run_benchmark("training_seeds", "--stage", "grpo_vlm", "--project", str(tmp_path))
    missing = tmp_path / "data" / "06_models"
    assert done.returncode == 2 and f"--project: {missing} does not exist" in done.stderr
