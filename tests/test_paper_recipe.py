"""`kedro run --env paper` end to end on a CPU: the paper recipe as shipped in conf/paper, with tiny random
checkpoints in the real folder layouts (tests/paper_checkpoints.py), a handful of real mp4 videos and only
the sizes shrunk (steps, frames, resolution, batches, limits). It takes the paths a real run takes:
hub-layout loading, Qwen captioning of real videos, LoRA on the VLM, the Wan VAE's 4k + 1 frame geometry,
the anchor filter, CLIP rewards, pretrained FVD features, inference placement and bf16 inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_project_copy
from tests.paper_checkpoints import paper_checkpoints
from tests.runs import run
from vans_pipelines.models.placement import Inference
from vans_pipelines.params import ParameterError
from vans_pipelines.video import encode_video
from vans_pipelines.world import render_sample

FPS = 16.0
STAGES = ["ingest", "caption", "sft", "joint_grpo", "evaluate"]

# conf/paper with only its sizes shrunk. The anchor threshold is the one non-size: random checkpoints fine-
# tuned for two steps never write an anchor within ROUGE-L 0.6 of the (random captioner's) ground truth.
SHRUNK: dict[str, Any] = {
    "ingest": {
        "clip": {"context_frames": 9, "target_frames": 9, "height": 32, "width": 32, "fps": FPS},
        "videos": {
            "min_shot_seconds": 0.5,
            "max_pairs_per_video": 3,
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
    },
    "run": {"inference": {"batch_size": 4, "read_workers": 1}},
    "caption": {"captioner": {"max_new_tokens": 12, "batch_size": 4}},
    "sft": {
        "vlm": {
            "trainer": {
                "max_steps": 2,
                "batch_size": 2,
                "checkpoint_every_n_steps": 1,
                "val_every_n_steps": None,
            },
            "eval": {"max_new_tokens": 12, "limit": 2},
        },
        "vdm": {
            "conditioning": {"context_frames": 3, "text_max_length": 16},  # 3 latent frames of 9 (4k + 1)
            "trainer": {
                "max_steps": 2,
                "batch_size": 2,
                "accumulate_grad_batches": 1,
                "checkpoint_every_n_steps": 1,
            },
            "eval": {"num_steps": 2, "limit": 2},
        },
    },
    "grpo_vlm": {
        "grpo": {"group_size": 2},
        "sampling": {"max_new_tokens": 12},
        "render_steps": 2,
        "trainer": {"max_steps": 1, "batch_size": 1, "checkpoint_every_n_steps": 1},
        "eval": {"seeds": [0], "limit": 2, "max_new_tokens": 12},
    },
    "grpo_vdm": {
        "grpo": {"group_size": 2},
        "anchors": {"min_rouge_l": 0.0, "max_new_tokens": 12},
        "sde": {"num_steps": 3},
        "trainer": {"max_steps": 1, "batch_size": 1, "checkpoint_every_n_steps": 1},
        "eval": {"seeds": [0], "limit": 2, "num_steps": 2},
    },
    "evaluate": {"seeds": [0], "num_steps": 2, "max_new_tokens": 12, "batch_size": 4, "grid": {"samples": 2}},
}


def write_world_videos(raw: Path, per_family: int = 4, samples_per_video: int = 3) -> list[Path]:
    """Real mp4 files (PyAV, H.264) under ``procedural/`` and ``predictive/``: each joins a few rendered
    world episodes, so it has hard cuts between them, as edited footage does."""
    paths = []
    for family in ("procedural", "predictive"):
        (raw / family).mkdir(parents=True, exist_ok=True)
        for v in range(per_family):
            clips = []
            for k in range(samples_per_video):
                sample = render_sample(
                    v,
                    "train",
                    k,
                    context_frames=14,
                    target_frames=14,
                    height=64,
                    width=64,
                    families=(family,),
                )
                clips += [sample.context, sample.target]
            path = raw / family / f"{family}_{v}.mp4"
            encode_video(np.concatenate(clips), str(path), fps=FPS, codec="libx264")
            paths.append(path)
    return paths


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


@pytest.fixture(scope="module")
def paper_project(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("paper")
    project = make_project_copy(root)
    write_world_videos(project / "data" / "01_raw")
    checkpoints = {name: str(path) for name, path in paper_checkpoints(root / "checkpoints").items()}
    return project, checkpoints


@pytest.mark.slow
def test_the_paper_recipe_runs_every_stage_on_real_layout_checkpoints(paper_project, monkeypatch):
    project, checkpoints = paper_project
    placed: set[str] = set()
    place = Inference.place

    def recording_place(self, *models):
        placed.update(type(m).__name__ for m in models if m is not None)
        assert self.precision == "bf16-mixed"  # conf/paper's inference precision reached the nodes
        return place(self, *models)

    monkeypatch.setattr(Inference, "place", recording_place)
    run(project, STAGES, merged(SHRUNK, {"checkpoints": checkpoints}), env="paper")

    data = project / "data"
    ingest = json.loads((data / "02_intermediate" / "ingest_report.json").read_text())
    assert ingest["source"] == "videos" and ingest["quarantined"] == []
    assert all(ingest["triplets"][split] > 0 for split in ("train", "val", "test"))
    triplets = data / "02_intermediate" / "triplets"
    for split in ("train", "val", "test"):  # span triplets: the index alone, sources relative to it
        assert sorted(p.name for p in (triplets / split).iterdir()) == ["index.parquet"]
        index = pd.read_parquet(triplets / split / "index.parquet")
        assert index["source_uri"].str.startswith("../../../01_raw/").all()
    captions = pd.read_parquet(data / "03_primary" / "captions.parquet")
    assert set(captions["captioned_by"]) == {"captioner"}  # real videos: the Qwen2.5-VL checkpoint wrote them

    reporting = data / "08_reporting"
    sft_vlm = json.loads((reporting / "sft_vlm_report.json").read_text())
    sft_vdm = json.loads((reporting / "sft_vdm_report.json").read_text())
    assert sft_vlm["steps"] == 2 and sft_vdm["steps"] == 2
    vlm_meta = json.loads((data / "06_models" / "sft_vlm" / "vans_vlm.json").read_text())
    assert vlm_meta["base"] == checkpoints["qwen2_5_vl"]  # LoRA: an adapter over the released weights
    anchors = pd.read_parquet(data / "07_model_output" / "anchor_captions.parquet")
    assert set(anchors["split"]) == {"train", "val"}

    metrics = json.loads((reporting / "metrics.json").read_text())
    assert metrics["scorer"] == "ClipScorer"
    assert metrics["feature_extractor"].startswith("videomae features")
    assert metrics["inference"] == {"device": "cpu", "precision": "bf16-mixed"}
    video_metrics = metrics["systems"]["joint_grpo"]["metrics"]
    assert np.isfinite(video_metrics["fvd"]["mean"]) and np.isfinite(video_metrics["clip_v"]["mean"])
    assert {"VisionLanguageModel", "VideoDiffusionModel", "ClipScorer", "PretrainedVideoFeatures"} <= placed


def test_the_paper_recipe_names_each_missing_checkpoint_before_any_node_runs(project_copy):
    with pytest.raises(ParameterError) as error:
        run(project_copy, STAGES, env="paper")
    message = str(error.value)
    for key, expected in (
        ("checkpoints.qwen2_5_vl", "Qwen2.5-VL checkpoint folder"),
        ("checkpoints.wan2_1", "Wan2.1 diffusers folder (model_index.json"),
        ("checkpoints.clip", "CLIPModel checkpoint folder"),
        ("checkpoints.fvd_extractor", "transformers video model folder"),
    ):
        assert f"{key}: not set; expected a {expected}" in message
    assert not any((project_copy / "data").rglob("*.parquet"))


@pytest.mark.slow
def test_ingest_needs_no_checkpoint_and_the_next_stage_names_its_own(project_copy):
    """Getting started's `kedro run --env paper --pipelines ingest` runs before any checkpoint is set; a stage
    that loads models names only the checkpoints it needs."""
    write_world_videos(project_copy / "data" / "01_raw", per_family=2)
    run(project_copy, ["ingest"], SHRUNK, env="paper")
    triplets = project_copy / "data" / "02_intermediate" / "triplets"
    assert len(pd.read_parquet(triplets / "train" / "index.parquet")) > 0
    with pytest.raises(ParameterError) as error:
        run(project_copy, ["sft"], SHRUNK, env="paper")
    message = str(error.value)
    assert "checkpoints.qwen2_5_vl: not set" in message and "checkpoints.wan2_1: not set" in message
    assert "checkpoints.clip" not in message and "checkpoints.fvd_extractor" not in message


def test_a_wrong_checkpoint_folder_is_named_with_what_was_expected(paper_project, tmp_path):
    _, checkpoints = paper_project
    copy = make_project_copy(tmp_path)
    wrong = {**checkpoints, "wan2_1": checkpoints["qwen2_5_vl"]}  # a Qwen folder where Wan belongs
    with pytest.raises(ParameterError) as error:
        run(copy, ["sft"], merged(SHRUNK, {"checkpoints": wrong}), env="paper")
    message = str(error.value)
    assert "sft.vdm.model.path:" in message and "has no model_index.json" in message
    assert "expected a Wan2.1 diffusers folder" in message and "(set by checkpoints.wan2_1)" in message
    assert not (copy / "data" / "06_models" / "sft_vlm").exists()
