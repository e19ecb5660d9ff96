"""`vans answer` on a tiny finished run: the answer video and printed caption, and clear errors. (The module
is `answer.py`, not `cli.py`: Kedro loads a package's `cli.py` as project commands.)"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vans_pipelines.answer import main
from vans_pipelines.datasets import TripletDataset
from vans_pipelines.video.io import decode_all, encode_video


@pytest.fixture(scope="module")
def context_video(finished_run, tmp_path_factory) -> Path:
    triplets = TripletDataset(
        path=str(finished_run / "data" / "02_intermediate" / "triplets" / "test")
    ).load()
    context, _ = triplets.clips(triplets[0].sample_id)
    path = tmp_path_factory.mktemp("cli") / "context.mp4"
    encode_video(context, str(path), fps=8)
    return path


def args(finished_run, video, out, *extra):
    return [
        "answer",
        "--video",
        str(video),
        "--question",
        "What happens next?",
        "--out",
        str(out),
        "--project",
        str(finished_run),
        "--checkpoints",
        str(finished_run / "data" / "06_models"),
        "--steps",
        "2",
        *extra,
    ]


@pytest.mark.slow
def test_answer_prints_the_caption_and_writes_the_video(finished_run, context_video, tmp_path, capsys):
    out = tmp_path / "answers" / "answer.mp4"
    assert main(args(finished_run, context_video, out)) == 0
    printed = capsys.readouterr().out
    assert "models: grpo_vlm + grpo_vdm on cpu" in printed  # run.inference.device auto, without a GPU
    assert "caption: " in printed and "reasoning: " in printed
    video = decode_all(str(out))
    assert video.shape == (16, 32, 32, 3)  # the project's ingest.clip: 16 answer frames of 32 x 32
    assert not list(out.parent.glob(".*tmp"))


@pytest.mark.slow
def test_the_console_script_is_installed(finished_run, context_video, tmp_path):
    vans = Path(sys.executable).parent / "vans"
    result = subprocess.run(
        [
            str(vans),
            *args(finished_run, context_video, tmp_path / "a.mp4", "--answer-frames", "8"),
            *("--device", "cpu", "--precision", "bf16-mixed"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert decode_all(str(tmp_path / "a.mp4")).shape[0] == 8


@pytest.mark.slow
def test_bad_inputs_are_clear_errors_and_write_nothing(finished_run, context_video, tmp_path, capsys):
    out = tmp_path / "answer.mp4"
    assert main(args(finished_run, tmp_path / "missing.mp4", out)) == 2
    assert "missing.mp4 does not exist" in capsys.readouterr().err
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video")
    assert main(args(finished_run, garbage, out)) == 2
    err = capsys.readouterr().err
    assert "cannot read video" in err and "garbage.mp4" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    no_models = args(finished_run, context_video, out)
    no_models[no_models.index("--checkpoints") + 1] = str(empty)
    assert main(no_models) == 2
    assert "no trained models in" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(args(finished_run, context_video, out, "--device", "cuda:3")) == 2
        assert "--device: 'cuda:3': this machine has no CUDA device" in capsys.readouterr().err
    assert not out.exists()
