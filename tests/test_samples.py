"""A split's samples kept in memory once read (``run.sample_cache_mb``): the same items, read once."""

import pickle

import numpy as np
import pytest

from vans_pipelines.samples import TripletSamples
from vans_pipelines.world import render_split

GEOMETRY = {"context_frames": 4, "target_frames": 4, "height": 16, "width": 16}
CLIP_BYTES = 2 * 4 * 16 * 16 * 3  # context + target of one sample


@pytest.fixture
def counted(monkeypatch):
    """A 4-sample split whose clip reads are counted."""
    split = render_split(0, "train", 4, **GEOMETRY)
    reads: list[str] = []
    read = split.clips

    def counting(sample_id: str):
        reads.append(sample_id)
        return read(sample_id)

    monkeypatch.setattr(split, "clips", counting)
    return split, reads


def test_cached_samples_are_read_once_and_equal_uncached_ones(counted):
    split, reads = counted
    plain, cached = TripletSamples(split), TripletSamples(split, cache_mb=1)
    for _ in range(3):
        for i in range(4):
            a, b = plain[i], cached[i]
            assert a.keys() == b.keys() and a["sample_id"] == b["sample_id"]
            assert np.array_equal(a["context"], b["context"]) and np.array_equal(a["target"], b["target"])
    assert len(reads) == 3 * 4 + 4  # the plain samples read every time, the cached ones once


def test_cached_clips_cannot_be_written_into(counted):
    split, _ = counted
    cached = TripletSamples(split, cache_mb=1)
    item = cached[0]
    with pytest.raises(ValueError, match="read-only"):
        item["context"][0, 0, 0, 0] = 255
    item["caption"] = "changed"  # the item is the caller's own dict
    assert cached[0]["caption"] != "changed"


def test_the_cache_keeps_no_more_than_its_budget(counted):
    split, reads = counted
    cached = TripletSamples(split, cache_mb=2.5 * CLIP_BYTES / 2**20)  # room for two samples' clips
    for _ in range(2):
        for i in range(4):
            cached[i]
    assert reads == [split.index["sample_id"].iloc[i] for i in (0, 1, 2, 3, 2, 3)]
    assert cached[3]["context"].flags.writeable  # not cached: the reader's own copy


def test_a_pickled_copy_starts_with_an_empty_cache():
    """What a DataLoader worker gets: the settings, not the parent's cached clips."""
    cached = TripletSamples(render_split(0, "train", 2, **GEOMETRY), cache_mb=1)
    cached[0]
    copy = pickle.loads(pickle.dumps(cached))
    assert copy._cache == {} and copy.cache_bytes == cached.cache_bytes
    assert copy[0]["sample_id"] == cached[0]["sample_id"]
