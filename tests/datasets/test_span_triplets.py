"""Span triplets (``TripletDataset(clip_format="span")``): the index alone, clips decoded from the source
videos where they are used, the same pixels as the clip formats, and sources checked when a split loads."""

import shutil

import fsspec
import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from tests.conftest import base_params, encode_cut_video
from vans_pipelines.datasets import TripletDataset, VideoFolderDataset
from vans_pipelines.pipelines.ingest.nodes import build_triplets
from vans_pipelines.samples import TripletSamples
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.world import render_split

GEOMETRY = {"vae_spatial_factor": 8, "vae_temporal_factor": 1, "patch_size": [1, 2, 2]}
CLIP = {"context_frames": 4, "target_frames": 4, "height": 16, "width": 16}
COLOURS = [(200, 30, 30), (30, 160, 40), (40, 60, 210), (220, 220, 40)]


def ingest(raw: str, **videos):
    """The ingest node's three splits for the videos under ``raw`` (a path or a URL)."""
    params = base_params(
        "ingest",
        {
            "source": "videos",
            "clip": {"context_frames": 8, "target_frames": 8, "height": 32, "width": 32, "fps": 8.0},
            "videos": {"val_fraction": 0.0, "test_fraction": 0.0, "min_shot_seconds": 0.5, **videos},
        },
    )
    return build_triplets(VideoFolderDataset(path=raw).load(), params, GEOMETRY)


@pytest.fixture
def raw(tmp_path):
    """Three 4-shot videos, a hard cut every 1.5 s, keyframes every 10 frames (so clips need seeks)."""
    folder = tmp_path / "project" / "data" / "01_raw"
    folder.mkdir(parents=True)
    for i in range(3):
        encode_cut_video(folder / f"v{i}.mp4", COLOURS[i:] + COLOURS[:i], 1.5)
    return folder


def saved(triplets, path, clip_format, **kwargs):
    TripletDataset(path=str(path), clip_format=clip_format, **kwargs).save(triplets)
    return TripletDataset(path=str(path), clip_format=clip_format, **kwargs)


def test_span_and_clip_triplets_give_the_same_training_batches(raw, tmp_path):
    train = ingest(str(raw))[0]
    assert len(train) >= 8
    out = raw.parent / "02_intermediate"
    clips = saved(train, out / "npz", "npz").load()
    spans_dataset = saved(train, out / "span", "span")
    assert sorted(p.name for p in (out / "span").iterdir()) == ["index.parquet"]  # no pixels
    spans = spans_dataset.load()
    pd.testing.assert_frame_equal(spans.index, clips.index)
    for fmt in ("span", "npz"):  # relative to the set: the project can move, no machine paths are kept
        stored = pd.read_parquet(out / fmt / "index.parquet")["source_uri"]
        assert set(stored) == {f"../../01_raw/v{i}.mp4" for i in range(3)}
    # decoded in two DataLoader worker processes, in the training order of the same seed
    by_workers = SamplesDataModule(TripletSamples(spans), 4, seed=3, num_workers=2).train_dataloader()
    in_process = SamplesDataModule(TripletSamples(clips), 4, seed=3).train_dataloader()
    batches = 0
    for span_batch, clip_batch in zip(by_workers, in_process, strict=True):
        assert span_batch["sample_id"] == clip_batch["sample_id"]
        assert np.array_equal(span_batch["context"], clip_batch["context"])
        assert np.array_equal(span_batch["target"], clip_batch["target"])
        batches += 1
    assert batches == len(train) // 4


def test_a_moved_project_still_finds_its_sources(raw, tmp_path):
    train = ingest(str(raw))[0]
    saved(train, raw.parent / "02_intermediate" / "train", "span")
    moved = shutil.move(str(tmp_path / "project"), str(tmp_path / "elsewhere"))
    loaded = TripletDataset(path=f"{moved}/data/02_intermediate/train", clip_format="span").load()
    assert loaded.index["source_uri"].str.startswith(f"{moved}/data/01_raw/").all()
    assert loaded[0].context.shape == (8, 32, 32, 3)


def test_a_source_modified_after_ingest_is_named_with_its_triplets(raw):
    train = ingest(str(raw))[0]
    dataset = saved(train, raw.parent / "02_intermediate" / "train", "span")
    encode_cut_video(raw / "v1.mp4", COLOURS[::-1], 1.5)  # re-encoded in place: other shots
    with pytest.raises(DatasetError, match="changed") as err:
        dataset.load()
    message = str(err.value)
    assert "v1.mp4" in message and "v0.mp4" not in message and "re-run ingest" in message
    for sample_id in train.index.loc[train.index["source"].str.endswith("v1.mp4"), "sample_id"][:5]:
        assert sample_id in message


def test_a_source_deleted_after_ingest_is_named_with_its_triplets(raw):
    train = ingest(str(raw))[0]
    dataset = saved(train, raw.parent / "02_intermediate" / "train", "span")
    (raw / "v2.mp4").unlink()
    with pytest.raises(DatasetError, match=r"missing: .*v2\.mp4") as err:
        dataset.load()
    first_id = train.index.loc[train.index["source"].str.endswith("v2.mp4"), "sample_id"].iloc[0]
    assert first_id in str(err.value)
    unchecked = TripletDataset(
        path=str(raw.parent / "02_intermediate" / "train"), clip_format="span", verify_sources=False
    ).load()
    assert len(unchecked) == len(train)  # the check can be left to the user (e.g. a read-only archive)


def test_remote_sources_are_read_through_fsspec(raw, tmp_path):
    memory = fsspec.filesystem("memory")
    for i in range(3):
        memory.pipe(f"/span-test-raw/v{i}.mp4", (raw / f"v{i}.mp4").read_bytes())
    try:
        train = ingest("memory:///span-test-raw")[0]
        assert train.index["source_uri"].str.fullmatch(r"memory:///?span-test-raw/v\d\.mp4").all()
        local = ingest(str(raw))[0]
        dataset = saved(train, tmp_path / "train", "span")
        loaded = dataset.load()
        for sample_id in loaded.index["sample_id"][:4]:
            for a, b in zip(loaded.clips(sample_id), local.clips(sample_id), strict=True):
                assert np.array_equal(a, b)
        memory.rm("/span-test-raw/v0.mp4")
        with pytest.raises(DatasetError, match=r"missing: memory://.*span-test-raw/v0\.mp4"):
            dataset.load()
    finally:
        memory.rm("/span-test-raw", recursive=True)


def test_span_shards_load_as_their_union(raw, tmp_path):
    whole = ingest(str(raw))[0]
    for k in range(2):
        saved(ingest(str(raw), shard=f"{k}/2")[0], tmp_path / "train", "span")
    union = TripletDataset(path=str(tmp_path / "train"), clip_format="span").load()
    pd.testing.assert_frame_equal(union.index, whole.index)
    assert np.array_equal(union[len(union) - 1].target, whole[len(whole) - 1].target)


def test_the_synthetic_world_cannot_be_saved_as_spans(tmp_path):
    with pytest.raises(DatasetError, match="synthetic world renders its clips"):
        TripletDataset(path=str(tmp_path / "train"), clip_format="span").save(
            render_split(0, "train", 2, **CLIP)
        )
    assert not (tmp_path / "train").exists()


def test_a_set_saved_with_clips_is_not_read_as_spans(tmp_path):
    TripletDataset(path=str(tmp_path / "train")).save(render_split(0, "train", 2, **CLIP))
    with pytest.raises(DatasetError, match="clip_format is span"):
        TripletDataset(path=str(tmp_path / "train"), clip_format="span").load()
