"""benchmarks/grpo_stage1_vs_trl.py --smoke (what CI runs of it): both trainers step on the same prompts."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_times_trl_and_ours_and_writes_the_ratio(tmp_path):
    out = tmp_path / "stage1_vs_trl.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/grpo_stage1_vs_trl.py", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert figures["smoke"] is True and figures["steps"] == 3
    for name in ("trl", "ours", "ours+video"):
        assert figures[f"{name}_seconds_per_step"] > 0
    assert figures["ours_over_trl"] == figures["ours_seconds_per_step"] / figures["trl_seconds_per_step"]
