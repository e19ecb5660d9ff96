"""The samples node: every split's triplets with the caption stage's captions, made once per run by each
stage that trains or evaluates."""

import numpy as np
import pandas as pd
import pytest

from vans_pipelines.pipeline_registry import register_pipelines
from vans_pipelines.pipelines.samples.nodes import make_samples
from vans_pipelines.samples import ordered_batches
from vans_pipelines.world import render_split

GEOMETRY = {"context_frames": 4, "target_frames": 4, "height": 16, "width": 16}


def caption_table(*splits) -> pd.DataFrame:
    rows = [
        {"sample_id": r.sample_id, "caption": f"caption of {r.sample_id}", "reasoning": "because"}
        for split in splits
        for r in split.index.itertuples()
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def splits():
    return tuple(render_split(0, name, n, **GEOMETRY) for name, n in (("train", 3), ("val", 2), ("test", 2)))


def test_every_split_gets_its_captions_and_the_clip_rate(splits):
    train, val, test = splits
    samples = make_samples(train, val, test, caption_table(*splits), fps=12.0)
    assert (len(samples.train), len(samples.val), len(samples.test)) == (3, 2, 2)
    assert samples.fps == 12.0
    item = samples.test[1]
    assert item["sample_id"] == test.index["sample_id"].iloc[1]
    assert item["caption"] == f"caption of {item['sample_id']}" and item["reasoning"] == "because"
    assert item["context"].shape[0] == 4 and item["target"].shape[0] == 4


def test_a_sample_without_a_caption_is_an_error_naming_it(splits):
    train, val, test = splits
    captions = caption_table(train, val)  # the test split was never captioned
    with pytest.raises(ValueError, match=test.index["sample_id"].iloc[0]):
        make_samples(train, val, test, captions, fps=8.0)


def test_each_stage_that_trains_or_evaluates_makes_its_samples_once():
    pipelines = register_pipelines()
    for name in ("sft", "grpo_vlm", "grpo_vdm", "joint_grpo", "evaluate", "tune", "ablate", "__default__"):
        nodes = [n.name for n in pipelines[name].nodes]
        assert nodes.count("make_samples_node") == 1, name
        assert nodes[0] == "make_samples_node" or "caption_triplets_node" in nodes, name
    for name in ("ingest", "caption"):
        assert "make_samples_node" not in {n.name for n in pipelines[name].nodes}


def test_evaluation_batches_read_in_worker_processes_are_the_same_batches(splits):
    """``run.inference.read_workers``: ordered batches come from DataLoader workers, unchanged."""
    train, val, test = splits
    in_process = make_samples(train, val, test, caption_table(*splits), fps=8.0)
    by_workers = make_samples(train, val, test, caption_table(*splits), fps=8.0, read_workers=2)
    assert by_workers.train.read_workers == 2
    expected = list(ordered_batches(in_process.train, 2))
    got = list(ordered_batches(by_workers.train, 2))
    assert [start for start, _ in got] == [start for start, _ in expected] == [0, 2]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert a["sample_id"] == b["sample_id"] and a["caption"] == b["caption"]
        assert np.array_equal(a["context"], b["context"]) and np.array_equal(a["target"], b["target"])
    assert [s for _, b in ordered_batches(by_workers.train, 2, limit=1) for s in b["sample_id"]] == [
        train.index["sample_id"].iloc[0]
    ]
