"""``dvc repro`` on a git clone-like copy of the project with tiny settings written into conf/base: it runs
every stage; a second repro is a no-op; a parameter change re-runs that stage and the ones after it only;
a deleted output comes back from DVC's cache and a forced re-run gives identical metrics (same seed);
``dvc exp run -S`` sweeps a parameter and ``dvc exp show`` lists the experiment's metrics as numbers."""

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, make_project_copy
from tests.runs import SMOKE
from vans_pipelines.params.base import merge

STAGES = {"ingest", "caption", "sft", "grpo_vlm", "grpo_vdm", "evaluate", "tune", "ablate"}


def dvc_env() -> dict[str, str]:
    """DVC stages call `kedro`: this environment's bin folder goes first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "KEDRO_DISABLE_TELEMETRY": "true",
    }


def sh(project: Path, *cmd: str) -> str:
    result = subprocess.run(cmd, cwd=project, env=dvc_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def stages_run(log: str) -> set[str]:
    return {s for s in STAGES if f"Running stage '{s}'" in log}


def set_params(project: Path, section: str, values: dict) -> None:
    path = project / "conf" / "base" / f"parameters_{section}.yml"
    current = yaml.safe_load(path.read_text())
    current[section] = merge(current[section], values)
    path.write_text(yaml.safe_dump(current, sort_keys=False))


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("dvc"))
    shutil.rmtree(project / "src")
    shutil.copytree(PROJECT_ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / ".dvc", project / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    for section, values in SMOKE.items():
        set_params(project, section, values)
    sh(project, "git", "init", "-q")
    sh(project, "git", "add", "-A")
    sh(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny project")
    return project


@pytest.mark.slow
def test_dvc_repro_runs_all_then_nothing_then_only_what_changed(dvc_project):
    first = sh(dvc_project, "dvc", "repro")
    assert stages_run(first) == STAGES
    # The log: per-step progress of every training stage; Lightning's lines once each, and no advert.
    flat = " ".join(first.split())  # rich wraps long messages in a non-terminal log
    for stage in ("scorer", "sft_vlm", "sft_vdm", "grpo_vlm", "grpo_vdm"):
        assert re.search(rf"{stage}: step \d+/\d+, ", flat), stage
    assert "ETA" in flat
    assert "Trainer.fit` stopped" in flat
    assert "INFO: `Trainer.fit` stopped" not in first  # Lightning's own console handler is gone
    assert "Tip: For seamless cloud logging" not in flat
    metrics = json.loads((dvc_project / "data" / "08_reporting" / "metrics.json").read_text())
    assert len(metrics["systems"]) == 8  # five model systems, still frame, two truth-caption ones

    second = sh(dvc_project, "dvc", "repro")
    assert stages_run(second) == set(), second

    assert (dvc_project / "data" / "08_reporting" / "ablation.md").is_file()

    # A stage-2 parameter: grpo_vdm, evaluate and the ablations (whose recipes build on it) re-run;
    # nothing upstream, not tune.
    set_params(dvc_project, "grpo_vdm", {"optim": {"lr": 2e-3}})
    third = sh(dvc_project, "dvc", "repro")
    assert stages_run(third) == {"grpo_vdm", "evaluate", "ablate"}, third

    # A lost output comes back from DVC's cache, unchanged, without re-running anything.
    metrics_file = dvc_project / "data" / "08_reporting" / "metrics.json"
    before = json.loads(metrics_file.read_text())
    metrics_file.unlink()
    fourth = sh(dvc_project, "dvc", "repro")
    assert stages_run(fourth) == set(), fourth
    assert json.loads(metrics_file.read_text()) == before

    # Same seed, same inputs: running the stage again gives identical metrics.
    fifth = sh(dvc_project, "dvc", "repro", "--force", "--single-item", "evaluate")
    assert stages_run(fifth) == {"evaluate"}
    after = json.loads(metrics_file.read_text())
    before.pop("seconds"), after.pop("seconds")
    assert before == after


@pytest.mark.slow
def test_dvc_exp_run_sweeps_a_parameter(dvc_project):
    sh(dvc_project, "dvc", "repro")
    sh(dvc_project, "git", "add", "-A")
    sh(dvc_project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "reproduced")
    log = sh(dvc_project, "dvc", "exp", "run", "-S", "conf/base/parameters_evaluate.yml:evaluate.seeds=[0]")
    assert stages_run(log) == {"evaluate"}, log
    metrics = json.loads((dvc_project / "data" / "08_reporting" / "metrics.json").read_text())
    assert metrics["seeds"] == [0]
    shown = sh(dvc_project, "dvc", "exp", "show", "--no-pager", "--csv")
    assert "evaluate.seeds" in shown
    # The experiment kept its metrics: its row has the summary's numbers (DVC prints "!" for a metric
    # file an experiment commit lacks).
    rows = list(csv.DictReader(io.StringIO(shown[shown.index("Experiment,") :])))
    experiments = [r for r in rows if r["Experiment"]]
    assert len(experiments) == 1, shown
    numbers = {k: v for k, v in experiments[0].items() if k.startswith("joint_grpo.")}
    assert "joint_grpo.clip_v" in numbers and all(v not in ("", "!", "-") for v in numbers.values()), numbers
    assert all(float(v) == float(v) for v in numbers.values())
    assert experiments[0]["evaluate.seeds"] == "[0]"


@pytest.mark.slow
def test_a_killed_dvc_repro_resumes_training_from_its_checkpoint(dvc_project):
    """SIGKILL `dvc repro` (and its kedro child) once stage 1 has written a checkpoint; the next `dvc repro`
    re-runs the stage, which resumes from that checkpoint instead of starting over."""
    set_params(dvc_project, "grpo_vlm", {"trainer": {"max_steps": 40, "checkpoint_every_n_steps": 2}})
    process = subprocess.Popen(
        ["dvc", "repro"],
        cwd=dvc_project,
        env=dvc_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = dvc_project / "data" / "06_models" / "resume" / "grpo_vlm"
    deadline = time.monotonic() + 600
    while (
        not list(checkpoints.glob("*/last.ckpt")) and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert process.poll() is None, "stage 1 finished before it could be killed"
    time.sleep(0.5)  # let the checkpoint write complete
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    log = sh(dvc_project, "dvc", "repro")
    assert "grpo_vlm" in stages_run(log)
    report = json.loads((dvc_project / "data" / "08_reporting" / "grpo_vlm_report.json").read_text())
    assert report["steps"] == 40 and report["resumed_from_step"] >= 2
    assert not list(checkpoints.glob("*/last.ckpt"))  # removed once the stage completed
    assert stages_run(sh(dvc_project, "dvc", "repro")) == set()
