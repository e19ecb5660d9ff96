import numpy as np
import pytest
from kedro.io import DatasetError
from lightning.pytorch.loggers import TensorBoardLogger

from vans_pipelines.datasets import TensorBoardScalarsDataset, VideoFileDataset


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_video_file_round_trip(tmp_path, suffix):
    frames = np.zeros((5, 16, 24, 3), np.uint8)
    for t in range(5):  # a moving square (a gif merges identical consecutive frames)
        frames[t, 4:12, 2 * t : 2 * t + 8] = (200, 40, 40)
    dataset = VideoFileDataset(path=str(tmp_path / f"grid.{suffix}"), fps=8)
    dataset.save(frames)
    loaded = dataset.load()
    assert loaded.shape == frames.shape
    assert np.abs(loaded.astype(int) - frames).mean() < 8  # lossy codecs, same picture
    assert not list(tmp_path.glob("*tmp*"))


def test_video_file_refuses_bad_frames_and_keeps_the_old_file(tmp_path):
    dataset = VideoFileDataset(path=str(tmp_path / "grid.mp4"))
    dataset.save(np.zeros((2, 8, 8, 3), np.uint8))
    before = (tmp_path / "grid.mp4").read_bytes()
    with pytest.raises(DatasetError, match=r"grid\.mp4: expected uint8"):
        dataset.save(np.zeros((2, 8, 8), np.float32))
    assert (tmp_path / "grid.mp4").read_bytes() == before
    with pytest.raises(DatasetError, match=r"\.mp4 or \.gif"):
        VideoFileDataset(path=str(tmp_path / "grid.avi"))


def test_tensorboard_scalars_of_the_latest_run_per_stage(tmp_path):
    for run, value in (("run-a", 1.0), ("run-b", 2.0)):
        logger = TensorBoardLogger(save_dir=str(tmp_path), name=run, version="grpo_vlm")
        for step in range(3):
            logger.log_metrics({"reward/total/mean": value + step, "train/loss": 0.0}, step=step)
        logger.finalize("success")
    table = TensorBoardScalarsDataset(path=str(tmp_path), tags=["reward/*"]).load()
    assert set(table["run"]) == {"run-b"} and table["value"].tolist() == [2.0, 3.0, 4.0]
    assert TensorBoardScalarsDataset(path=str(tmp_path / "absent")).load().empty
    with pytest.raises(DatasetError, match="read-only"):
        TensorBoardScalarsDataset(path=str(tmp_path)).save(table)
