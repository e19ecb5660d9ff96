"""What the benchmark tests share: a benchmark's ``--smoke`` run as CI runs it, and the figures it wrote."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT


def smoke_figures(script: str, out: Path) -> dict[str, Any]:
    """Run ``benchmarks/<script> --smoke --json out`` from the repository root; the figures it wrote."""
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--smoke", "--json", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())
