"""Stage times of the main job (`kedro run`, the ``__default__`` pipeline) on the embedded default.

    .venv/bin/python -m benchmarks.stage_times [--project DIR] [--stages ingest,caption,...] [--smoke] \
        [--json out.json] > /dev/null

Runs the stages in order, each as one Kedro session in this process (what `kedro run` does, split at
the stage boundaries, which are all persisted), in a throw-away copy of the project unless ``--project``
names one, and prints each stage's wall time, the total, and the total against the 15-minute target
(to stderr; Kedro's own log goes to stdout). ``--smoke`` runs every stage at a few samples and steps:
the ``smoke`` environment (conf/smoke), as ``kedro run --env smoke`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from benchmarks.figures import add_output_arguments, write_figures
from vans_pipelines.params import conf_parameters, conf_section, parse_section

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["ingest", "caption", "sft", "grpo_vlm", "grpo_vdm", "evaluate"]
TARGET_SECONDS = 900.0
#: ``--smoke``: conf/smoke's settings (``kedro run --env smoke``), every stage at a few samples and steps.
SMOKE: dict[str, Any] = conf_parameters(ROOT / "conf" / "smoke")


def base_parameters(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """conf/base's section ``name`` with ``overrides`` merged in key by key, as an environment's are."""
    return conf_section(ROOT / "conf" / "base", name, overrides)


def base_section(name: str) -> Any:
    """Section ``name`` of ``conf/base``, parsed: the embedded default the benchmarks measure."""
    return parse_section(name, base_parameters(name))


def copy_project(parent: Path, source: Path = ROOT, data: bool = False) -> Path:
    """A throw-away copy of the Kedro project ``source`` under ``parent``: its config (not ``local`` or
    ``tuned``) and, with ``data``, its data folder without TensorBoard runs or resume checkpoints (else an
    empty raw folder). The installed package is what runs."""
    project = parent / "project"
    project.mkdir()
    shutil.copy(source / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(source / "conf", project / "conf", ignore=shutil.ignore_patterns("local", "tuned"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    if data:
        ignore = shutil.ignore_patterns("tensorboard", "resume")
        shutil.copytree(source / "data", project / "data", ignore=ignore, symlinks=True)
    else:
        (project / "data" / "01_raw").mkdir(parents=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=None, help="run in this project (default: a copy)")
    parser.add_argument("--stages", default=",".join(STAGES))
    add_output_arguments(parser, smoke="every stage at a few samples and steps")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    stages = args.stages.split(",")
    with tempfile.TemporaryDirectory(prefix="vans-stages-") as tmp:
        project = args.project.resolve() if args.project else copy_project(Path(tmp))
        bootstrap_project(project)
        times = {}
        for stage in stages:
            start = time.perf_counter()
            with KedroSession.create(project_path=project, env="smoke" if args.smoke else None) as session:
                session.run(pipeline_names=[stage])
            times[stage] = time.perf_counter() - start
            print(f"{stage:>10}: {times[stage]:7.1f} s", file=sys.stderr, flush=True)
    total = sum(times.values())
    out = sys.stderr
    print(
        f"\nstage times on {os.cpu_count()} CPU cores (project: {'copy' if not args.project else project})",
        file=out,
    )
    for stage, seconds in times.items():
        print(f"  {stage:<10} {seconds:7.1f} s  {seconds / total:6.1%}", file=out)
    print(f"  {'total':<10} {total:7.1f} s  = {total / 60:.1f} min", file=out)
    if stages == STAGES:
        print(f"  total / 15-minute target = {total / TARGET_SECONDS:.2f} (must be < 1)", file=out)
    write_figures(args.json, {"stage_seconds": times, "total_seconds": total}, smoke=args.smoke)


if __name__ == "__main__":
    main()
