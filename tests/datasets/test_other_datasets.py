import json

import pytest
from kedro.io import DatasetError

from vans_pipelines.datasets import AtomicJSONDataset, VideoFolderDataset


def test_json_round_trip_and_atomic_failure(tmp_path):
    ds = AtomicJSONDataset(path=str(tmp_path / "reports" / "r.json"))
    ds.save({"a": [1, 2]})
    assert ds.load() == {"a": [1, 2]}

    class Unserialisable:
        def __str__(self):
            raise TypeError("cannot be written")

    with pytest.raises(DatasetError, match="cannot be written"):
        ds.save({"a": Unserialisable()})
    assert ds.load() == {"a": [1, 2]}
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["r.json"]


def test_json_invalid_file_names_the_path(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(DatasetError, match=r"r\.json is not valid JSON"):
        AtomicJSONDataset(path=str(path)).load()


def test_video_folder_lists_videos_recursively(tmp_path):
    (tmp_path / "procedural").mkdir()
    for name in ["a.mp4", "procedural/b.MOV", "c.webm", "notes.txt", ".hidden.mp4", "noext"]:
        (tmp_path / name).write_bytes(b"x" * 3)
    folder = VideoFolderDataset(path=str(tmp_path)).load()
    assert folder.exists
    assert [f.relative_path for f in folder.files] == ["a.mp4", "c.webm", "procedural/b.MOV"]
    assert folder.files[0].size_bytes == 3
    assert folder.files[0].source() == str(tmp_path / "a.mp4")


def test_video_folder_missing_and_read_only(tmp_path):
    ds = VideoFolderDataset(path=str(tmp_path / "absent"))
    assert not ds.load().exists and not ds.exists()
    with pytest.raises(DatasetError, match="read-only"):
        ds.save({"anything": 1})


def test_json_dataset_from_catalog_config(tmp_path):
    from kedro.io import DataCatalog

    catalog = DataCatalog.from_config(
        {"report": {"type": "vans_pipelines.datasets.AtomicJSONDataset", "path": str(tmp_path / "x.json")}}
    )
    catalog.save("report", {"ok": True})
    assert json.loads((tmp_path / "x.json").read_text()) == {"ok": True}
