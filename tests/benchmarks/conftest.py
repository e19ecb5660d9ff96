"""What the benchmark tests share: a benchmark's ``--smoke`` run as CI runs it, and the figures it wrote.
The tests run the scripts as a user does (``python -m benchmarks.<name>``) and never import them."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT


def run_benchmark(name: str, *arguments: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.<name> [arguments]`` from the repository root, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def smoke_figures(script: str, out: Path, *arguments: str) -> dict[str, Any]:
    """Run ``python -m benchmarks.<script> --smoke --json out [arguments]`` from the repository root; the
    figures it wrote (with ``benchmarks/figures.py``'s record: its ``figures`` beside ``smoke``,
    ``command``, ``machine`` and ``date``)."""
    done = run_benchmark(Path(script).stem, "--smoke", "--json", str(out), *arguments)
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads(out.read_text())
    return {**record.pop("figures", {}), **record}
