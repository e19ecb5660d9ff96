"""Tiny settings of every stage (conf/smoke's) and a helper that runs pipelines through a real KedroSession;
shared by the pipeline, CLI and notebook tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from vans_pipelines.params import conf_parameters, parse_section
from vans_pipelines.pipelines.sft.nodes import sft_run_key

#: conf/smoke's settings (``kedro run --env smoke``): every stage at a few samples and steps, by stage.
SMOKE: dict[str, Any] = conf_parameters(Path(__file__).resolve().parents[1] / "conf" / "smoke")
TINY: dict[str, Any] = {name: SMOKE[name] for name in ("ingest", "caption", "sft")}
SMALL_GRPO: dict[str, Any] = {name: SMOKE[name] for name in ("grpo_vlm", "grpo_vdm")}
SMALL_EVAL: dict[str, Any] = {"evaluate": SMOKE["evaluate"]}
ALL_TINY: dict[str, Any] = {**TINY, **SMALL_GRPO, **SMALL_EVAL}


def run(
    project: Path,
    pipelines: list[str],
    runtime_params: dict[str, Any] | None = None,
    env: str | None = None,
    nodes: list[str] | None = None,
):
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=runtime_params, env=env) as session:
        return session.run(pipeline_names=pipelines, node_names=nodes)


SOURCE_SUFFIXES = frozenset({".py", ".yml", ".yaml", ".json", ".toml"})
"""What a source or config edit changes (not ``.pyc``, not the egg-info's ``PKG-INFO``)."""


def holds_current_default_sft(project: Path) -> bool:
    """Whether ``project``'s data holds SFT models of the default config made by the code as it is now, as
    ``make run`` leaves them before ``make test`` (CI): no parameter files beside ``conf/base``, both SFT
    reports carry the run key the default settings give on this data, and no source or config file is
    newer than they are. Tests that need the default's trained models copy them then, instead of spending
    ten minutes re-making identical ones (SFT is deterministic on the CPU)."""
    data = project / "data"
    reports = [data / "08_reporting" / f"sft_{model}_report.json" for model in ("vlm", "vdm")]
    needed = [*reports, *(data / "06_models" / f"sft_{model}" for model in ("vlm", "vdm"))]
    if not all(path.exists() for path in needed):
        return False
    if any(path.name.startswith("parameters") for path in (project / "conf" / "local").rglob("*")):
        return False
    # Source and config files only: bytecode caches and the editable install's egg-info are rewritten by
    # later imports and installs (pytest's doctest collection, a re-run `make setup`), not by edits.
    sources = [
        path
        for folder in ("src", "conf/base")
        for path in (project / folder).rglob("*")
        if path.suffix in SOURCE_SUFFIXES
        and not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)
    ]
    newest_source = max((path.stat().st_mtime for path in sources if path.is_file()), default=0.0)
    if newest_source > min(report.stat().st_mtime for report in reports):
        return False
    expected = default_sft_run_keys(project)
    return [json.loads(report.read_text()).get("run_key") for report in reports] == expected


def default_sft_run_keys(project: Path) -> list[str]:
    """The ``run_key`` of the VLM and VDM SFT reports that ``project``'s settings give on its data."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        sft = parse_section("sft", context.params["sft"])
        sizes = len(context.catalog.load("train_triplets")), len(context.catalog.load("tokenizer"))
    return [sft_run_key(params, *sizes) for params in (sft.vlm, sft.vdm)]
