"""What the benchmark tests share: a benchmark's ``--smoke`` run as CI runs it, and the figures it wrote.
The tests run the scripts as a user does (``python -m benchmarks.<name>``) and never import them."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT


def smoke_figures(script: str, out: Path) -> dict[str, Any]:
    """Run ``python -m benchmarks.<script> --smoke --json out`` from the repository root and return the
    figures it wrote (with ``benchmarks/figures.py``'s record: its ``figures`` beside ``smoke``, ``command``,
    ``machine`` and ``date``)."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{Path(script).stem}", "--smoke", "--json", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads(out.read_text())
    return {**record.pop("figures", {}), **record}
