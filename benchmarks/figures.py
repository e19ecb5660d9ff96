"""What every benchmark's ``--json PATH`` writes: its figures, with the command line, the CPU and the date
they were measured on, so a saved result says where it comes from (``make docs`` turns the files under
``benchmarks/results/`` into the docs' benchmark page)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vans_pipelines.machine import cpu_model


def add_output_arguments(parser: argparse.ArgumentParser, smoke: str) -> None:
    """``--smoke`` (what the tests run: ``smoke`` says what it shrinks) and ``--json PATH``."""
    parser.add_argument("--smoke", action="store_true", help=f"{smoke}: the code runs (the tests run it)")
    parser.add_argument("--json", type=Path, help="also write the figures here: benchmarks/results/NAME.json")


def write_figures(path: Path | None, figures: Mapping[str, Any], *, smoke: bool) -> None:
    """Write ``figures`` to ``path`` as JSON (nothing without a path), beside the command that measured
    them, the CPU, the number of torch threads' cores and the date."""
    if path is None:
        return
    record = {
        "command": " ".join(["python -m", f"benchmarks.{Path(sys.argv[0]).stem}", *sys.argv[1:]]),
        "smoke": smoke,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "figures": dict(figures),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
