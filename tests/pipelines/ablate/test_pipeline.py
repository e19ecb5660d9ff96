"""``kedro run --pipelines ablate`` on a tiny finished run: every recipe trains what it should and nothing
else, the report and its figures are written, and bad recipes fail before any training."""

import json
import math
import shutil

import pandas as pd
import pytest

from tests.runs import ALL_TINY, run
from vans_pipelines.params import ParameterError

TINY_ABLATE = {
    "ablate": {
        "seeds": [0, 1],
        "eval": {"seeds": [0], "num_steps": 2, "max_new_tokens": 16},
        "variants": {
            "cascade_as_one": {"cascade": {"max_steps": 2}},
            # 3-step SFT models show no right event, so the oracle alone gives every group equal rewards:
            # zero advantages, no update (GRPO working as it should). A faint proxy term gives these tiny
            # runs a gradient, so the test sees which parts the recipe trains.
            "oracle_reward": {
                "stage1": {"rewards": {"text_fidelity": 0.01}},
                "stage2": {"rewards": {"video_fidelity": 0.01}},
            },
        },
    }
}

#: What each default recipe must train (True) and leave as the SFT model (False): (VLM, VDM).
TRAINS = {
    "two_stage": (True, True),
    "vlm_only": (True, False),
    "vdm_only": (False, True),
    "cascade_as_one": (True, True),
    "no_semantic_reward": (True, True),
    "text_only_stage1": (True, False),
    "oracle_reward": (True, True),
    "paper_plus_oracle": (True, True),
}


@pytest.fixture(scope="module")
def ablated(finished_run, tmp_path_factory):
    project = tmp_path_factory.mktemp("ablate") / "project"
    shutil.copytree(finished_run, project, ignore=shutil.ignore_patterns("tensorboard"))
    sft = {m: (project / "data" / "06_models" / m).stat().st_mtime for m in ("sft_vlm", "sft_vdm")}
    run(project, ["ablate"], {**ALL_TINY, **TINY_ABLATE})
    return project, sft


@pytest.mark.slow
def test_every_recipe_trains_its_parts_and_freezes_the_rest(ablated):
    project, sft = ablated
    figures = json.loads((project / "data" / "08_reporting" / "ablation.json").read_text())
    assert set(figures["trained"]) == {f"{name}/seed_{s}" for name in TRAINS for s in (0, 1)}
    for key, record in figures["trained"].items():
        vlm, vdm = TRAINS[key.split("/")[0]]
        assert (record["vlm_adapter_change"] > 0) == vlm, key
        assert (record["vdm_adapter_change"] > 0) == vdm, key
        # Only adapters train: base weights, the VAE and the text encoder stay the SFT models'.
        assert record["vlm_base_unchanged"] and record["vdm_base_unchanged"], key
    # Recipes with the same stage settings share a run; seeds never do.
    trained = figures["trained"]
    assert trained["two_stage/seed_0"]["runs"][0] == trained["vlm_only/seed_0"]["runs"][0]
    assert trained["two_stage/seed_0"]["runs"][0] == trained["no_semantic_reward/seed_0"]["runs"][0]
    assert trained["two_stage/seed_0"]["runs"] != trained["two_stage/seed_1"]["runs"]
    assert trained["two_stage/seed_0"]["runs"][1] != trained["no_semantic_reward/seed_0"]["runs"][1]
    assert all(run["steps"] == 2 for run in figures["runs"].values())
    # The catalog's SFT models were copied, never written.
    assert {m: (project / "data" / "06_models" / m).stat().st_mtime for m in sft} == sft


@pytest.mark.slow
def test_the_report_checks_every_claim_over_the_training_seeds(ablated):
    project, _ = ablated
    reporting = project / "data" / "08_reporting"
    figures = json.loads((reporting / "ablation.json").read_text())
    assert figures["training_seeds"] == [0, 1] and figures["baseline"] == "two_stage"
    assert set(figures["systems"]) == set(TRAINS) | {"sft_cascade", "still_frame"}
    for name in TRAINS:
        event = figures["systems"][name]["metrics"]["event_accuracy"]
        assert len(event["per_training_seed"]) == 2 and 0 <= event["mean"] <= 1
    still = figures["systems"]["still_frame"]["metrics"]
    assert still["motion"]["mean"] == 0 and still["still_similarity"]["mean"] == pytest.approx(1, abs=1e-5)
    assert len(figures["claims"]) == 10 and len(figures["questions"]) == 3
    for claim in figures["claims"] + figures["questions"]:
        assert claim["verdict"] in {"holds", "does not hold", "not resolved"}
        assert len(claim["per_training_seed"]) == 2
    assert set(figures["comparisons"]) == (set(TRAINS) - {"two_stage"}) | {"sft_cascade", "still_frame"}
    assert set(figures["correlations"]["all"]) == {"rouge_l", "clip_v", "clip_t"}
    samples = pd.read_parquet(reporting / "ablation_samples.parquet")
    assert set(samples["training_seed"]) == {0, 1}
    assert len(samples[(samples["system"] == "two_stage")]) == 2 * 4  # seeds x test samples
    summary = json.loads((reporting / "ablation_summary.json").read_text())
    assert all((isinstance(v, float) and math.isfinite(v)) or math.isnan(v) for v in summary.values())
    assert "oracle_reward_vs_two_stage.event_accuracy" in summary
    report = (reporting / "ablation.md").read_text()
    assert "## The paper's claims" in report and "Two stages beat VDM-only GRPO" in report
    assert (reporting / "ablation.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"variants": {"two_stage": {"stage1": {"grpo": {"group_size": 1}}}}},
            r"ablate\.variants\.two_stage\.stage1\.grpo\.group_size",
        ),
        (
            {"variants": {"vdm_only": {"stage2": {"rewards": {"nope": 1.0}}}}},
            r"ablate\.variants\.vdm_only\.stage2\.rewards\.nope: unknown reward",
        ),
        (
            {"variants": {"x": {"label": "nothing"}}},
            r"ablate\.variants\.x\.stage1: a recipe trains something",
        ),
        ({"baseline": "missing"}, r"ablate\.baseline: 'missing' is not a variant"),
        (
            {"variants": {"c": {"cascade": {"rewards": {"video_fidelity": 1}}, "stage1": {}}}},
            r"ablate\.variants\.c\.cascade",
        ),
    ],
)
def test_recipe_errors_fail_before_any_training(project_copy, override, message):
    with pytest.raises(ParameterError, match=message):
        run(project_copy, ["ablate"], {**ALL_TINY, "ablate": override})
    assert not (project_copy / "data" / "07_model_output").exists()
