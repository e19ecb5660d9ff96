"""Does a Joint-GRPO stage's val gain beat the seed spread for every *training* seed, not only the default?

    .venv/bin/python -m benchmarks.training_seeds --stage grpo_vlm --seeds 0,1,2 [--project DIR] \
        [--params grpo_vlm.optim.lr=1e-3,...] [--params-file overrides.yml] [--test] [--smoke] \
        [--json rows.json] > /dev/null      # from the repository root

A stage report compares the val reward before and after training at one training seed, against the
spread over eval seeds. This runs the stage once per training seed (``<stage>.trainer.seed``), each in
a throw-away copy of a project that has finished the stage's upstream stages (``kedro run --pipelines
ingest,caption,sft`` before grpo_vlm, or ``dvc repro`` up to the stage; default: this project), so the
project's own models and reports are left alone. It prints, side by side, each seed's change of the val
total, the level's seed spread (the larger of before / after), the paired per-eval-seed std, and whether
the change beats the spread; then the change's mean and std over training seeds. Kedro's own log goes to
stdout, the table to stderr.

With ``--test`` (stage 2 only) each run is also judged on the test split, as issue 29 asks: the evaluate
stage renders the ground-truth captions with the SFT and the stage-2 VDM (and the two cascades), and the
row adds the oracle's event accuracy of each and their paired difference per test sample (mean over the
eval seeds) with its standard error.

``--params-file`` takes runtime parameters as a YAML or JSON file (nested sections, lists), applied before
``--params``; ``--smoke`` runs each stage at a few samples and steps (conf/smoke's settings: the code runs,
the figures mean nothing); ``--json`` writes every row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from omegaconf import OmegaConf

from benchmarks.figures import add_output_arguments, write_figures
from benchmarks.stage_times import ROOT, SMOKE, copy_project

STAGES = ("grpo_vlm", "grpo_vdm")
#: What ``--test`` evaluates after stage 2: the VDM alone from the ground truth, before and after, and the
#: cascades it serves.
TEST_SYSTEMS = ["sft_cascade", "joint_grpo", "truth_caption_sft_vdm", "truth_caption_grpo_vdm"]


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
    project: Path,
    stage: str,
    seeds: Sequence[int],
    params: Mapping[str, Any] | None = None,
    test: bool = False,
) -> list[dict[str, Any]]:
    """Run ``stage`` once per training seed in ``project`` (which it overwrites) and return each run's
    val figures: ``seed, before, after, improvement, seed_spread, paired_std, beats_spread``; with
    ``test`` (stage 2) also its test figures (:func:`test_gain`)."""
    if stage not in STAGES:
        raise ValueError(f"--stage: {stage!r} is not one of {', '.join(STAGES)}")
    if test and stage != "grpo_vdm":
        raise ValueError("--test: judges stage 2 (the VDM) on the test split; use --stage grpo_vdm")
    bootstrap_project(project)
    rows = []
    for seed in seeds:
        overrides = {
            stage: {"trainer": {"seed": seed}},
            **({"evaluate": {"systems": TEST_SYSTEMS}} if test else {}),
        }
        runtime = OmegaConf.to_container(OmegaConf.merge(params or {}, overrides))
        with KedroSession.create(project_path=project, runtime_params=runtime) as session:
            session.run(pipeline_names=[stage, "evaluate"] if test else [stage])
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
                **(test_gain(project) if test else {}),
            }
        )
    return rows


def test_gain(project: Path) -> dict[str, float]:
    """The stage-2 VDM against its SFT VDM on the test split, both from the ground-truth captions: each one's
    oracle event accuracy, and their paired difference per test sample (mean over the eval seeds) with its
    standard error."""
    table = pd.read_parquet(project / "data" / "08_reporting" / "evaluation_samples.parquet")
    per_sample = table.groupby(["system", "sample_id"])["event"].mean().unstack(0)
    sft, grpo = per_sample["truth_caption_sft_vdm"], per_sample["truth_caption_grpo_vdm"]
    difference = grpo - sft
    return {
        "test_sft": float(sft.mean()),
        "test_grpo": float(grpo.mean()),
        "test_gain": float(difference.mean()),
        "test_gain_se": float(difference.std(ddof=1) / math.sqrt(len(difference))),
    }


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
    if all("test_gain" in r for r in rows):
        lines.append("test, ground-truth captions: seed, SFT VDM, GRPO VDM, paired gain ± standard error")
        lines.extend(
            f"{r['seed']:>5} {r['test_sft']:8.4f} {r['test_grpo']:8.4f} {r['test_gain']:+8.4f} "
            f"± {r['test_gain_se']:.4f}{'  beyond 2 SE' if r['test_gain'] > 2 * r['test_gain_se'] else ''}"
            for r in rows
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
    parser.add_argument("--params-file", type=Path, help="runtime parameters as a YAML or JSON file")
    parser.add_argument("--test", action="store_true", help="stage 2: judge each run on the test split too")
    add_output_arguments(parser, smoke="every stage at a few samples and steps")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    seeds = [int(s) for s in args.seeds.split(",")]
    layers = [
        SMOKE if args.smoke else {},
        OmegaConf.load(args.params_file) if args.params_file else {},
        parse_params(args.params),
    ]
    params = OmegaConf.to_container(OmegaConf.merge(*layers))
    with tempfile.TemporaryDirectory(prefix="vans-seeds-") as tmp:
        try:
            project = copy_finished_project(args.project.resolve(), Path(tmp))
        except FileNotFoundError as error:
            parser.error(str(error))  # one line and exit code 2, not a traceback
        rows = run_seeds(project, args.stage, seeds, params, test=args.test)
    print(
        f"\n{args.stage} val total, one run per training seed ({os.cpu_count()} CPU cores)", file=sys.stderr
    )
    print(summary(rows), file=sys.stderr)
    write_figures(args.json, {"stage": args.stage, "params": params, "rows": rows}, smoke=args.smoke)


if __name__ == "__main__":
    main()
