"""``kedro run --pipelines ingest`` through a real KedroSession on a throw-away copy of the project."""

import json
import shutil

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from vans_pipelines.datasets import TripletDataset
from vans_pipelines.params import ParameterError
from vans_pipelines.pipeline_registry import register_pipelines

SMALL = {"ingest": {"synthetic": {"num_train": 8, "num_val": 4, "num_test": 4}}}


def run(project, pipeline="ingest", runtime_params=None, env=None):
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=runtime_params, env=env) as session:
        return session.run(pipeline_names=[pipeline])


def test_registry_exposes_every_stage():
    pipelines = register_pipelines()
    expected = {
        "ingest",
        "caption",
        "sft",
        "grpo_vlm",
        "grpo_vdm",
        "joint_grpo",
        "evaluate",
        "tune",
        "__default__",
    }
    assert expected <= set(pipelines)
    assert "build_triplets_node" in {n.name for n in pipelines["__default__"].nodes}


@pytest.mark.slow
def test_ingest_session_writes_the_triplets(project_copy):
    run(project_copy, runtime_params=SMALL)
    inter = project_copy / "data" / "02_intermediate"
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        loaded = TripletDataset(path=str(inter / "triplets" / split)).load()
        assert len(loaded) == n and loaded[0].caption
    report = json.loads((inter / "ingest_report.json").read_text())
    assert report["triplets"] == {"train": 8, "val": 4, "test": 4}


@pytest.mark.slow
def test_ingest_session_on_real_videos(project_copy, shipped_videos):
    for v in shipped_videos:
        shutil.copy(v, project_copy / "data" / "01_raw" / v.name)
    run(project_copy, runtime_params={"ingest": {"source": "videos"}})
    report = json.loads((project_copy / "data" / "02_intermediate" / "ingest_report.json").read_text())
    assert report["videos_ingested"] == len(shipped_videos) and report["quarantined"] == []
    assert sum(report["triplets"].values()) >= len(shipped_videos)  # at least one pair per video
    # Project-relative paths: the report and the triplets say nothing of this machine's folders.
    assert report["folder"] == "data/01_raw"
    inter = project_copy / "data" / "02_intermediate"
    sources = set()
    for split in ("train", "val", "test"):
        sources |= set(TripletDataset(path=str(inter / "triplets" / split)).load().index["source"])
    assert len(sources) == len(shipped_videos)
    assert all(s.startswith("data/01_raw/") for s in sources)
    assert str(project_copy) not in (inter / "ingest_report.json").read_text()


@pytest.mark.slow
def test_bad_parameter_fails_before_any_node(project_copy):
    bad = {"ingest": {"clip": {"height": 30}}}
    with pytest.raises(ParameterError, match=r"ingest\.clip\.height: 30 is not divisible"):
        run(project_copy, runtime_params=bad)
    assert not (project_copy / "data" / "02_intermediate" / "triplets").exists()


@pytest.mark.slow
def test_videos_source_with_missing_folder_names_it(project_copy):
    shutil.rmtree(project_copy / "data" / "01_raw")
    with pytest.raises(Exception, match=r"01_raw' does not exist"):
        run(project_copy, runtime_params={"ingest": {"source": "videos"}})
