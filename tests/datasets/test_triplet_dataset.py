import numpy as np
import pytest
from kedro.io import DatasetError

from vans_pipelines.datasets import TripletDataset
from vans_pipelines.triplets import Shard, TripletSet
from vans_pipelines.world import render_split

GEOMETRY = {"context_frames": 6, "target_frames": 5, "height": 32, "width": 32}


@pytest.fixture
def triplets() -> TripletSet:
    return render_split(0, "train", 5, **GEOMETRY)


@pytest.mark.parametrize("clip_format", ["npz", "mp4"])
def test_save_load_round_trip(tmp_path, triplets, clip_format):
    ds = TripletDataset(path=str(tmp_path / "train"), clip_format=clip_format)
    assert not ds.exists()
    ds.save(triplets)
    assert ds.exists()
    loaded = ds.load()
    assert loaded.index.equals(triplets.index)
    for a, b in zip(loaded, triplets, strict=True):
        assert (a.sample_id, a.question, a.caption, a.family) == (
            b.sample_id,
            b.question,
            b.caption,
            b.family,
        )
        # both formats are lossless: the oracle needs exact colours
        assert np.array_equal(a.context, b.context) and np.array_equal(a.target, b.target)
    files = sorted(p.name for p in (tmp_path / "train" / "clips").iterdir())
    assert len(files) == 5 * (1 if clip_format == "npz" else 2)


def test_failed_save_keeps_the_previous_set(tmp_path, triplets):
    ds = TripletDataset(path=str(tmp_path / "train"))
    ds.save(triplets)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    def exploding_loader(sample_id):
        if sample_id.endswith("3"):
            raise RuntimeError("disk full")
        return triplets.clips(sample_id)

    with pytest.raises(DatasetError, match="disk full"):
        ds.save(TripletSet(triplets.index, exploding_loader))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no temp dir left
    assert len(ds.load()) == 5


def test_bad_clip_is_rejected_before_replacing(tmp_path, triplets):
    ds = TripletDataset(path=str(tmp_path / "train"))
    ds.save(triplets)
    broken = TripletSet(
        triplets.index, lambda sid: (np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4, 3), np.uint8))
    )
    with pytest.raises(DatasetError, match="context: expected a uint8"):
        ds.save(broken)
    assert np.array_equal(
        ds.load().clips(triplets.index["sample_id"][0])[1], triplets.clips(triplets.index["sample_id"][0])[1]
    )


def test_load_missing_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match="run ingest first"):
        TripletDataset(path=str(tmp_path / "nowhere")).load()


def test_missing_clip_names_the_sample(tmp_path, triplets):
    ds = TripletDataset(path=str(tmp_path / "train"))
    ds.save(triplets)
    sample_id = triplets.index["sample_id"][1]
    (tmp_path / "train" / "clips" / f"{sample_id}.npz").unlink()
    with pytest.raises(DatasetError, match=sample_id):
        ds.load().clips(sample_id)


def test_unsafe_sample_ids_are_refused(tmp_path, triplets):
    index = triplets.index.copy()
    index.loc[0, "sample_id"] = "../escape"
    clips = {
        new: triplets.clips(old)
        for new, old in zip(index["sample_id"], triplets.index["sample_id"], strict=True)
    }
    with pytest.raises(DatasetError, match="sample ids"):
        TripletDataset(path=str(tmp_path / "x")).save(TripletSet(index, clips.__getitem__))


def test_describe_and_memory_filesystem(triplets):
    ds = TripletDataset(path="memory://vans/train")
    ds.save(triplets)
    assert len(ds.load()) == 5
    assert "memory" in str(ds) or "vans/train" in str(ds)


def shards_of(triplets: TripletSet, count: int) -> list[TripletSet]:
    ids = list(triplets.index["sample_id"])
    return [
        TripletSet(
            triplets.index[triplets.index["sample_id"].isin(Shard(k, count).take(ids))],
            triplets.clips,
            Shard(k, count),
        )
        for k in range(count)
    ]


def test_shards_load_as_their_union_once_all_are_written(tmp_path, triplets):
    ds = TripletDataset(path=str(tmp_path / "train"))
    ds.save(triplets)  # an earlier whole set: the first shard replaces it
    first, second = shards_of(triplets, 2)
    ds.save(second)
    assert not (tmp_path / "train" / "index.parquet").exists()
    with pytest.raises(DatasetError, match=r"shard\(s\) 0/2 not written yet"):
        ds.load()
    ds.save(first)
    loaded = ds.load()
    assert list(loaded.index["sample_id"]) == sorted(triplets.index["sample_id"])
    for t in triplets:
        assert np.array_equal(loaded.clips(t.sample_id)[1], t.target)
    ds.save(triplets)  # a whole set replaces the shards
    assert not (tmp_path / "train" / "shards").exists() and len(ds.load()) == len(triplets)


def test_shards_of_another_split_of_the_work_are_dropped(tmp_path, triplets):
    ds = TripletDataset(path=str(tmp_path / "train"))
    for part in shards_of(triplets, 3)[:2]:
        ds.save(part)
    for part in shards_of(triplets, 2):
        ds.save(part)
    assert sorted(p.name for p in (tmp_path / "train" / "shards").iterdir()) == ["0-of-2", "1-of-2"]
    assert len(ds.load()) == len(triplets)
