"""benchmarks/training_seeds.py --test: stage-2 runs judged on the test split too."""

import json

import pytest

from benchmarks.training_seeds import TEST_SYSTEMS, copy_finished_project, run_seeds, summary
from tests.runs import ALL_TINY


@pytest.mark.slow
def test_a_stage2_seed_is_judged_on_the_test_split_against_its_sft_vdm(finished_run, tmp_path):
    project = copy_finished_project(finished_run, tmp_path)
    (row,) = run_seeds(project, "grpo_vdm", [1], ALL_TINY, test=True)
    metrics = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    assert list(metrics["systems"]) == TEST_SYSTEMS
    truth = {name: metrics["systems"][name]["metrics"]["event_accuracy"]["mean"] for name in TEST_SYSTEMS[2:]}
    assert row["test_sft"] == pytest.approx(truth["truth_caption_sft_vdm"])
    assert row["test_grpo"] == pytest.approx(truth["truth_caption_grpo_vdm"])
    assert row["test_gain"] == pytest.approx(row["test_grpo"] - row["test_sft"]) and row["test_gain_se"] >= 0
    assert "paired gain" in summary([row])
    with pytest.raises(ValueError, match="--test"):
        run_seeds(project, "grpo_vlm", [0], test=True)
