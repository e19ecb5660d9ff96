"""Tiny settings of every stage and a helper that runs pipelines through a real KedroSession; shared by the
pipeline, CLI and notebook tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

TINY: dict[str, Any] = {
    "ingest": {"synthetic": {"num_train": 12, "num_val": 4, "num_test": 4}},
    "caption": {"scorer": {"trainer": {"max_steps": 3, "batch_size": 4}}},
    "sft": {
        "vlm": {
            "trainer": {"max_steps": 3, "batch_size": 4, "checkpoint_every_n_steps": 2},
            "eval": {"limit": 2},
        },
        "vdm": {
            "trainer": {"max_steps": 3, "batch_size": 4, "checkpoint_every_n_steps": 2},
            "vae_fit": {"steps": 2, "batch_frames": 8},
            "eval": {"limit": 2, "num_steps": 2},
        },
    },
}

SMALL_GRPO: dict[str, Any] = {
    "grpo_vlm": {
        "grpo": {"group_size": 2},
        "sampling": {"max_new_tokens": 16},
        "render_steps": 2,
        "trainer": {"max_steps": 2, "batch_size": 2, "checkpoint_every_n_steps": 1},
        "eval": {"seeds": [0, 1], "limit": 2, "max_new_tokens": 16},
    },
    "grpo_vdm": {
        "grpo": {"group_size": 2},
        "anchors": {"min_rouge_l": 0.0, "max_new_tokens": 16},  # a 3-step SFT VLM writes poor anchors
        "sde": {"num_steps": 3, "window_end": 2},
        "trainer": {"max_steps": 2, "batch_size": 2, "checkpoint_every_n_steps": 1},
        "eval": {"seeds": [0], "limit": 2, "num_steps": 2},
    },
}

SMALL_EVAL: dict[str, Any] = {
    "evaluate": {"seeds": [0, 1], "num_steps": 2, "max_new_tokens": 16, "grid": {"samples": 2, "scale": 2}},
}

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
