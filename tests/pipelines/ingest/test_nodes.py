import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import base_params, encode_cut_video
from vans_pipelines.datasets import AtomicJSONDataset, TripletDataset, VideoFolderDataset
from vans_pipelines.ingest import IngestError
from vans_pipelines.pipelines.ingest.nodes import build_triplets
from vans_pipelines.triplets import QUESTIONS

GEOMETRY = {"vae_spatial_factor": 8, "vae_temporal_factor": 1, "patch_size": [1, 2, 2]}


def video_params(**videos) -> dict:
    return base_params(
        "ingest",
        {
            "source": "videos",
            "clip": {"context_frames": 8, "target_frames": 8, "height": 32, "width": 32, "fps": 8.0},
            "videos": {"val_fraction": 0.0, "test_fraction": 0.0, **videos},
        },
    )


def test_synthetic_source_renders_every_split():
    params = base_params("ingest", {"synthetic": {"num_train": 6, "num_val": 2, "num_test": 3}})
    train, val, test, report = build_triplets(None, params, GEOMETRY)
    assert (len(train), len(val), len(test)) == (6, 2, 3)
    assert report["triplets"] == {"train": 6, "val": 2, "test": 3} and report["quarantined"] == []
    assert train[0].caption and train[0].context.shape == (16, 32, 32, 3)
    assert set(train.index["split"]) == {"train"}


def test_folder_mixing_good_and_bad_files(tmp_path):
    raw = tmp_path / "raw"
    (raw / "procedural").mkdir(parents=True)
    encode_cut_video(raw / "procedural" / "good_cuts.mp4", [(200, 30, 30), (30, 160, 40), (40, 60, 210)], 2.0)
    encode_cut_video(raw / "good_long.mkv", [(90, 90, 200)], 5.0)
    (raw / "zero.mp4").write_bytes(b"")
    (raw / "text.avi").write_text("definitely not a video")
    data = (raw / "good_long.mkv").read_bytes()
    (raw / "truncated.mp4").write_bytes(data[: len(data) // 3])
    encode_cut_video(raw / "short.webm", [(10, 200, 10)], 1.0, codec="libvpx-vp9")

    folder = VideoFolderDataset(path=str(raw)).load()
    train, val, test, report = build_triplets(folder, video_params(), GEOMETRY)

    reasons = {q["path"].rsplit("/", 1)[1]: q["reason"] for q in report["quarantined"]}
    assert set(reasons) == {"zero.mp4", "text.avi", "truncated.mp4", "short.webm"}
    assert "0 bytes" in reasons["zero.mp4"] and "too short" in reasons["short.webm"]
    assert report["videos_ingested"] == 2 and len(val) == len(test) == 0
    sources = set(train.index["source"].str.rsplit("/", n=1).str[1])
    assert sources == {"good_cuts.mp4", "good_long.mkv"}
    rows = train.index.set_index(train.index["source"].str.rsplit("/", n=1).str[1])
    assert set(rows.loc["good_cuts.mp4", "family"]) == {"procedural"}
    assert set(rows.loc["good_long.mkv", "family"]) == {"predictive"}
    assert train.index["caption"].isna().all()  # captions are the caption stage's job
    for t in train:
        assert t.question in QUESTIONS[t.family]
        assert t.context.shape == (8, 32, 32, 3) and t.target.shape == (8, 32, 32, 3)
    assert train.index["crosses_cut"].any()


def test_real_videos_we_did_not_make_are_split_by_source(tmp_path, shipped_videos):
    raw = tmp_path / "raw"
    raw.mkdir()
    for v in shipped_videos:
        shutil.copy(v, raw / v.name)
    folder = VideoFolderDataset(path=str(raw)).load()
    params = video_params(val_fraction=0.25, test_fraction=0.25)
    splits = build_triplets(folder, params, GEOMETRY)[:3]
    per_split_sources = [set(s.index["source"]) for s in splits]
    assert all(per_split_sources)  # four videos: one each for val and test, two for train
    assert not (per_split_sources[0] & per_split_sources[1] or per_split_sources[0] & per_split_sources[2])
    assert not per_split_sources[1] & per_split_sources[2]
    index = pd.concat([s.index for s in splits])
    assert len(index) >= 6
    bikes = index[index["source"].str.endswith("bikes.mp4")]
    assert len(bikes) >= 3 and bikes["crosses_cut"].any()  # bikes.mp4 has hard cuts PySceneDetect finds


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    missing = VideoFolderDataset(path=str(tmp_path / "nope")).load()
    with pytest.raises(IngestError, match="does not exist"):
        build_triplets(missing, video_params(), GEOMETRY)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no videos here")
    empty = VideoFolderDataset(path=str(tmp_path / "empty")).load()
    with pytest.raises(IngestError, match="holds no video files"):
        build_triplets(empty, video_params(), GEOMETRY)


def test_folder_of_only_bad_files_is_an_error_listing_reasons(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    folder = VideoFolderDataset(path=str(tmp_path)).load()
    with pytest.raises(IngestError, match=r"none of the 1 videos .*\(0 bytes\)"):
        build_triplets(folder, video_params(), GEOMETRY)


def test_same_seed_same_triplets():
    params = base_params("ingest", {"synthetic": {"num_train": 3, "num_val": 1, "num_test": 1}})
    a, b = build_triplets(None, params, GEOMETRY), build_triplets(None, params, GEOMETRY)
    assert a[0].index.equals(b[0].index)
    assert all(np.array_equal(x.target, y.target) for x, y in zip(a[0], b[0], strict=True))


def ingest_into(raw, out, **videos):
    """Ingest ``raw`` and write the splits and report through the catalog's datasets, as a run does."""
    train, val, test, report = build_triplets(
        VideoFolderDataset(path=str(raw)).load(), video_params(**videos), GEOMETRY
    )
    for split, triplets in zip(("train", "val", "test"), (train, val, test), strict=True):
        TripletDataset(path=str(out / split)).save(triplets)
    AtomicJSONDataset(path=str(out / "ingest_report.json"), shard_field="shard").save(report)
    return report


def test_a_sharded_ingest_unions_to_the_one_process_run(tmp_path):
    raw = tmp_path / "raw"
    (raw / "procedural").mkdir(parents=True)
    colours = [(200, 30, 30), (30, 160, 40), (40, 60, 210), (220, 220, 40)]
    for i in range(5):
        encode_cut_video(
            raw / ("procedural" if i % 2 else ".") / f"v{i}.mp4", colours[i % 4 :] + colours, 1.0
        )
    (raw / "broken.mp4").write_text("not a video")
    fractions = {"val_fraction": 0.2, "test_fraction": 0.2}
    whole = ingest_into(raw, tmp_path / "whole", **fractions)
    parallel = ingest_into(raw, tmp_path / "parallel", workers=2, **fractions)
    assert whole["quarantined"] == parallel["quarantined"] and len(whole["quarantined"]) == 1
    for k in range(3):
        ingest_into(raw, tmp_path / "sharded", shard=f"{k}/3", **fractions)
    reports = AtomicJSONDataset(
        path=str(tmp_path / "sharded" / "ingest_report.json"), shard_field="shard"
    ).load()
    assert sorted(reports["shards"]) == ["0/3", "1/3", "2/3"]
    assert sum(r["videos_seen"] for r in reports["shards"].values()) == whole["videos_seen"] == 6
    for split in ("train", "val", "test"):
        expected = TripletDataset(path=str(tmp_path / "whole" / split)).load()
        assert len(expected) > 0
        for other in ("parallel", "sharded"):
            got = TripletDataset(path=str(tmp_path / other / split)).load()
            pd.testing.assert_frame_equal(got.index, expected.index)
            for sample_id in expected.index["sample_id"]:
                for a, b in zip(got.clips(sample_id), expected.clips(sample_id), strict=True):
                    assert np.array_equal(a, b)
