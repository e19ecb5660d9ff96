"""What the benchmark tests share: a benchmark's ``--smoke`` run as CI runs it, and the figures it wrote.
The tests run the scripts as a user does (``python -m benchmarks.<name>``) and never import them."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT


def smoke_figures(script: str, out: Path, *arguments: str) -> dict[str, Any]:
    """Run ``python -m benchmarks.<script> --smoke --json out [arguments]`` from the repository root; the
    figures it wrote (with ``benchmarks/figures.py``'s record: its ``figures`` beside ``smoke``,
    ``command``, ``machine`` and ``date``)."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{Path(script).stem}", "--smoke", "--json", str(out), *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads(out.read_text())
    return {**record.pop("figures", {}), **record}
