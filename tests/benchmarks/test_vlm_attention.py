"""benchmarks/vlm_attention.py --smoke (what CI runs of it): both vision-attention paths step alike."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_times_both_paths_and_finds_the_same_gradients(tmp_path):
    out = tmp_path / "vlm_attention.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/vlm_attention.py", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert figures["smoke"] is True and figures["steps"] == 2
    assert figures["per_window_seconds_per_step"] > 0 and figures["packed_seconds_per_step"] > 0
    assert figures["max_gradient_difference"] < 1e-5 and figures["loss_difference"] < 1e-5
