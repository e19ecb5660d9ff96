"""Ingest at scale: throughput at the paper's clip size against raw PyAV decoding, and peak memory as the
number of videos grows, measured in one run.

    .venv/bin/python benchmarks/ingest_scale.py [--repeats 2] [--counts 10,100,1000] [--workers 2]

1. Throughput, on the real sample videos of ``benchmarks/ingest.py`` (720p and smaller) plus six
   12 s 640x360 videos of three 4 s shots encoded here, at conf/paper's geometry (pairs of 33 + 33
   frames at 352x640, 16 fps):

   - ``decode``            PyAV decodes every frame of every file, nothing else (one process);
   - ``ingest scan``       the ingest node alone: decode, resample, PySceneDetect, pair (1 worker);
   - ``ingest, N workers`` the node and the writing of the three splits through ``TripletDataset``
     (each video decoded again and its pairs cut while they are written), 1 and ``--workers`` processes.

   Throughput is native frames per second; interleaved repeats, best kept.

2. Memory: a full ingest (node + writing) of 10, 100, 1000 small synthetic videos in a fresh process
   each, its peak resident memory (the process and its workers) beside what the clips of those
   triplets weigh, i.e. what an ingest that builds its triplets in memory would hold.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vans_pipelines.datasets import TripletDataset, VideoFolderDataset
from vans_pipelines.pipelines.ingest.nodes import build_triplets
from vans_pipelines.video import encode_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import decode_only, make_folder  # the sample videos of benchmarks/ingest.py

PAPER_GEOMETRY = {"vae_spatial_factor": 8, "vae_temporal_factor": 4, "patch_size": [1, 2, 2]}
PAPER_CLIP = {"context_frames": 33, "target_frames": 33, "height": 352, "width": 640, "fps": 16.0}
SMALL_GEOMETRY = {"vae_spatial_factor": 2, "vae_temporal_factor": 1, "patch_size": [1, 4, 4]}
SMALL_CLIP = {"context_frames": 8, "target_frames": 8, "height": 128, "width": 128, "fps": 8.0}


def ingest(folder: Path, out: Path, clip: dict, geometry: dict, workers: int, write: bool = True) -> int:
    """The ingest node on ``folder`` and (``write``) the three splits saved under ``out``; triplets."""
    params = {
        "source": "videos",
        "clip": clip,
        "videos": {"val_fraction": 0.1, "test_fraction": 0.1, "min_shot_seconds": 1.0, "workers": workers},
    }
    splits = build_triplets(VideoFolderDataset(path=str(folder)).load(), params, geometry)[:3]
    if write:
        for name, triplets in zip(("train", "val", "test"), splits, strict=True):
            TripletDataset(path=str(out / name)).save(triplets)
    return sum(len(s) for s in splits)


def throughput(repeats: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "videos").mkdir()
        folder = make_folder(Path(tmp) / "videos")
        make_long_shot_videos(folder, 6)
        files = sorted(folder.glob("*.mp4"))
        frames = decode_only(files, to_rgb=False)
        ways = {
            "decode": lambda: decode_only(files, to_rgb=False),
            "ingest scan": lambda: ingest(folder, Path(tmp) / "out", PAPER_CLIP, PAPER_GEOMETRY, 1, False),
            "ingest, 1 worker": lambda: ingest(folder, Path(tmp) / "out", PAPER_CLIP, PAPER_GEOMETRY, 1),
            f"ingest, {workers} workers": lambda: ingest(
                folder, Path(tmp) / "out", PAPER_CLIP, PAPER_GEOMETRY, workers
            ),
        }
        best = dict.fromkeys(ways, float("inf"))
        triplets = 0
        for _ in range(repeats):
            for name, way in ways.items():
                started = time.perf_counter()
                result = way()
                best[name] = min(best[name], time.perf_counter() - started)
                if name != "decode":
                    triplets = result
    print(
        f"throughput at 352x640, pairs of 33 + 33 frames: {len(files)} files, {frames} native frames, "
        f"{triplets} triplets"
    )
    for name, seconds in best.items():
        fps = frames / seconds
        ratio = best["decode"] / seconds
        print(f"  {name:<18} {seconds:7.2f} s  {fps:7.0f} frames/s  {ratio:5.2f} x decode")


def make_long_shot_videos(folder: Path, count: int) -> None:
    """``count`` 12 s 640x360 videos at 24 fps, three 4 s shots each (a square moving over noise), so the
    paper's 2 s segments pair up."""
    rng = np.random.default_rng(1)
    for i in range(count):
        shots = []
        for _ in range(3):
            base = rng.integers(0, 256, (1, 360, 640, 3), dtype=np.uint8) // 2
            shot = base.repeat(96, axis=0) + rng.integers(0, 24, (96, 360, 640, 3), dtype=np.uint8)
            for t in range(96):
                shot[t, 140:220, 5 * t : 5 * t + 80] = 250
            shots.append(shot)
        encode_video(np.concatenate(shots), str(folder / f"long_{i}.mp4"), fps=24, codec="libx264")


def make_small_videos(folder: Path, count: int) -> None:
    """``count`` 4 s videos of 96x96 at 8 fps, two shots each (a hard cut at 2 s)."""
    rng = np.random.default_rng(count)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shots = [
            (rng.integers(0, 256, (1, 96, 96, 3), dtype=np.uint8).repeat(16, axis=0) // 2)
            + rng.integers(0, 16, (16, 96, 96, 3), dtype=np.uint8)
            for _ in range(2)
        ]
        encode_video(np.concatenate(shots), str(folder / f"v{i:04d}.mp4"), fps=8, codec="libx264")


def peak_rss_kb() -> int:
    """This process's peak resident memory (KiB). Linux's VmHWM belongs to the process image, while
    ``ru_maxrss`` keeps the high-water mark of the parent the process was forked from."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_memory(folder: Path, out: Path, workers: int) -> None:
    """(child process) ingest ``folder`` and print its peak memory and the triplets' clip bytes."""
    started = time.perf_counter()
    triplets = ingest(folder, out, SMALL_CLIP, SMALL_GEOMETRY, workers)
    own = peak_rss_kb()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    frames = SMALL_CLIP["context_frames"] + SMALL_CLIP["target_frames"]
    clip_bytes = triplets * frames * SMALL_CLIP["height"] * SMALL_CLIP["width"] * 3
    print(
        json.dumps(
            {
                "triplets": triplets,
                "peak_mb": max(own, children) / 1024,
                "clips_mb": clip_bytes / 2**20,
                "seconds": time.perf_counter() - started,
            }
        )
    )


def memory(counts: list[int], workers: int) -> None:
    print(f"memory of a full ingest (node + writing), small videos, {workers} worker(s), fresh process each:")
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            folder = Path(tmp) / f"videos_{count}"
            make_small_videos(folder, count)
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(folder),
                    str(Path(tmp) / f"out_{count}"),
                    "--workers",
                    str(workers),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(result.stdout.strip().splitlines()[-1])
            print(
                f"  {count:5d} videos  {row['triplets']:5d} triplets  peak {row['peak_mb']:7.1f} MB   "
                f"clips {row['clips_mb']:7.1f} MB (held by an in-memory ingest)  {row['seconds']:6.1f} s"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--counts", default="10,100,1000", help="numbers of videos for the memory curve")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--measure", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure_memory(*args.measure, workers=args.workers)
        return
    if not args.skip_throughput:
        throughput(args.repeats, args.workers)
    memory([int(c) for c in args.counts.split(",")], 1)


if __name__ == "__main__":
    main()
