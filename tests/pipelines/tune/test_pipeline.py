"""``kedro run --pipelines tune`` on a tiny finished run: the study, its resumption, the tuned env."""

import json
import shutil

import pytest
import yaml
from kedro.framework.session import KedroSession

from tests.runs import ALL_TINY, SMOKE, run

TINY_TUNE = {"tune": SMOKE["tune"]}


@pytest.mark.slow
def test_tune_resumes_and_writes_parameters_the_next_run_uses(finished_run, tmp_path):
    project = tmp_path / "tune"
    shutil.copytree(finished_run, project, ignore=shutil.ignore_patterns("tensorboard"))
    run(project, ["tune"], {**ALL_TINY, **TINY_TUNE})
    summary = json.loads((project / "data" / "08_reporting" / "tune_summary.json").read_text())
    assert summary["ran_this_time"] == 2 and len(summary["trials"]) == 2
    assert (project / "data" / "07_model_output" / "tune" / "study.db").is_file()
    # Trials log apart from the training stages (whose folder evaluate's curves and DVC stage read).
    assert list(
        (project / "data" / "07_model_output" / "tune" / "tensorboard").rglob("events.out.tfevents.*")
    )
    assert not (project / "data" / "07_model_output" / "tensorboard").exists()

    # An interrupted study (here: one that stopped at its old target) resumes; it never re-runs trials.
    run(project, ["tune"], {**ALL_TINY, "tune": {**TINY_TUNE["tune"], "n_trials": 3}})
    summary = json.loads((project / "data" / "08_reporting" / "tune_summary.json").read_text())
    assert summary["ran_this_time"] == 1 and [t["number"] for t in summary["trials"]] == [0, 1, 2]
    for image in ("tune_history.png", "tune_importance.png"):
        assert (project / "data" / "08_reporting" / image).stat().st_size > 1000

    tuned = yaml.safe_load((project / "conf" / "tuned" / "parameters_grpo_vlm.yml").read_text())["grpo_vlm"]
    assert tuned["rewards"] == summary["best"]["overrides"]["rewards"]
    with KedroSession.create(project_path=project, env="tuned") as session:
        params = session.load_context().params["grpo_vlm"]
    assert params["rewards"] == tuned["rewards"] and params["optim"]["lr"] == summary["best"]["params"]["lr"]
