"""Does a Joint-GRPO stage's val gain beat the seed spread for every *training* seed, not only the default?

    .venv/bin/python -m benchmarks.training_seeds --stage grpo_vlm --seeds 0,1,2 [--project DIR] \
        [--params grpo_vlm.optim.lr=1e-3,...] > /dev/null      # from the repository root

A stage report compares the val reward before and after training at one training seed, against the
spread over eval seeds. This runs the stage once per training seed (``<stage>.trainer.seed``), each in
a throw-away copy of a project that has finished the stage's upstream stages (``kedro run --pipelines
ingest,caption,sft`` before grpo_vlm, or ``dvc repro`` up to the stage; default: this project), so the
project's own models and reports are left alone. It prints, side by side, each seed's change of the val
total, the level's seed spread (the larger of before / after), the paired per-eval-seed std, and whether
the change beats the spread; then the change's mean and std over training seeds. Kedro's own log goes to
stdout, the table to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from omegaconf import OmegaConf

from benchmarks.stage_times import ROOT, copy_project

STAGES = ("grpo_vlm", "grpo_vdm")


def parse_params(text: str) -> dict[str, Any]:
    """``a.b=1,c=x`` as nested runtime parameters, parsed as ``kedro run --params`` parses them.

    >>> parse_params("grpo_vlm.optim.lr=1e-3,grpo_vlm.rewards.format=0")
    {'grpo_vlm': {'optim': {'lr': 0.001}, 'rewards': {'format': 0}}}
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    return OmegaConf.to_container(OmegaConf.from_dotlist(items)) if items else {}


def copy_finished_project(source: Path, parent: Path) -> Path:
    """A copy of ``source``'s config and data (its trained models included) under ``parent``."""
    if not (source / "data" / "06_models").is_dir():
        raise FileNotFoundError(
            f"--project: {source / 'data' / '06_models'} does not exist; run the stages before the swept "
            "one first (e.g. `kedro run --pipelines ingest,caption,sft` for grpo_vlm)"
        )
    return copy_project(parent, source, data=True)


def run_seeds(
    project: Path, stage: str, seeds: Sequence[int], params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run ``stage`` once per training seed in ``project`` (which it overwrites) and return each run's
    val figures: ``seed, before, after, improvement, seed_spread, paired_std, beats_spread``."""
    if stage not in STAGES:
        raise ValueError(f"--stage: {stage!r} is not one of {', '.join(STAGES)}")
    bootstrap_project(project)
    rows = []
    for seed in seeds:
        runtime = OmegaConf.to_container(OmegaConf.merge(params or {}, {stage: {"trainer": {"seed": seed}}}))
        with KedroSession.create(project_path=project, runtime_params=runtime) as session:
            session.run(pipeline_names=[stage])
        report = json.loads((project / "data" / "08_reporting" / f"{stage}_report.json").read_text())
        rows.append(
            {
                "seed": seed,
                "before": report["val_before"]["total"],
                "after": report["val_after"]["total"],
                "improvement": report["improvement"],
                "seed_spread": report["seed_spread"],
                "paired_std": report["improvement_seed_std"],
                "beats_spread": report["improvement"] > report["seed_spread"],
            }
        )
    return rows


def summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """The side-by-side table and the change over training seeds."""
    lines = [
        f"{'seed':>5} {'before':>8} {'after':>8} {'change':>8} {'spread':>8} {'paired':>8}  beats spread"
    ]
    for r in rows:
        lines.append(
            f"{r['seed']:>5} {r['before']:8.4f} {r['after']:8.4f} {r['improvement']:+8.4f} "
            f"{r['seed_spread']:8.4f} {r['paired_std']:8.4f}  {'yes' if r['beats_spread'] else 'no'}"
        )
    changes = [r["improvement"] for r in rows]
    spread = statistics.stdev(changes) if len(changes) > 1 else 0.0
    lines.append(
        f"change over {len(rows)} training seeds: mean {statistics.fmean(changes):+.4f}, std {spread:.4f}; "
        f"beats the eval-seed spread in {sum(r['beats_spread'] for r in rows)} of {len(rows)}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    parser.add_argument("--project", type=Path, default=ROOT, help="a project past the stage's upstream")
    parser.add_argument("--params", default="", help="runtime parameters for every run, as kedro --params")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="vans-seeds-") as tmp:
        project = copy_finished_project(args.project.resolve(), Path(tmp))
        rows = run_seeds(project, args.stage, seeds, parse_params(args.params))
    print(
        f"\n{args.stage} val total, one run per training seed ({os.cpu_count()} CPU cores)", file=sys.stderr
    )
    print(summary(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
