"""Ingest at scale: throughput at the paper's clip size against raw PyAV decoding, what each triplet
format stores and how fast a data loader worker reads it back, and peak memory as the number of videos
grows, measured in one run.

    .venv/bin/python -m benchmarks.ingest_scale [--repeats 2] [--counts 10,100,1000] [--workers 2] \
        [--gpu-tflops 989] [--mfu 0.4] [--json figures.json]

1. Throughput, on the real sample videos of ``benchmarks/ingest.py`` (720p and smaller) plus six
   12 s 640x360 videos of three 4 s shots encoded here, at conf/paper's geometry (pairs of 33 + 33
   frames at 352x640, 16 fps):

   - ``decode``              PyAV decodes every frame of every file, nothing else (one process);
   - ``ingest scan``         the ingest node alone: decode, PySceneDetect, pair (1 worker);
   - ``spans, N workers``    the node and the three splits saved as span triplets (``clip_format: span``:
     the index alone), 1 and ``--workers`` processes;
   - ``npz clips, N workers`` the node and the three splits saved with their pixels (``npz``: each video
     decoded again and its pairs cut while they are written), 1 and ``--workers`` processes.

   Throughput is native frames per second; interleaved repeats, best kept. Then what each format stores
   per 1000 triplets, and how fast one process (a DataLoader worker) reads triplets back: span triplets
   seek into their source and decode the pair, npz ones read and inflate their file. Beside it, what a
   GPU consumes: the FLOPs of one paper-size SFT VDM sample (Wan2.1-1.3B forward and backward on a
   33-frame 352x640 clip, counted by torch's flop counter on the meta device, nothing allocated) at
   ``--gpu-tflops`` x ``--mfu``, and so the number of workers that keep one GPU fed.

2. Memory: a full ingest (node + writing) of 10, 100, 1000 small synthetic videos in a fresh process
   each, for each format, its peak resident memory (the process and its workers) beside what the clips
   of those triplets weigh, i.e. what an ingest that builds its triplets in memory would hold.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.figures import write_figures
from benchmarks.ingest import decode_only, make_folder
from benchmarks.stage_times import base_parameters  # the sample videos of benchmarks/ingest.py
from vans_pipelines.datasets import TripletDataset, VideoFolderDataset
from vans_pipelines.pipelines.ingest.nodes import build_triplets
from vans_pipelines.video import encode_video

PAPER_GEOMETRY = {"vae_spatial_factor": 8, "vae_temporal_factor": 4, "patch_size": [1, 2, 2]}
PAPER_CLIP = {"context_frames": 33, "target_frames": 33, "height": 352, "width": 640, "fps": 16.0}
SMALL_GEOMETRY = {"vae_spatial_factor": 2, "vae_temporal_factor": 1, "patch_size": [1, 4, 4]}
SMALL_CLIP = {"context_frames": 8, "target_frames": 8, "height": 128, "width": 128, "fps": 8.0}


def ingest(
    folder: Path,
    out: Path,
    clip: dict,
    geometry: dict,
    workers: int,
    write: bool = True,
    clip_format: str = "npz",
) -> int:
    """The ingest node on ``folder`` and (``write``) the three splits saved under ``out`` in
    ``clip_format``; the number of triplets."""
    videos = {"val_fraction": 0.1, "test_fraction": 0.1, "min_shot_seconds": 1.0, "workers": workers}
    params = base_parameters("ingest", {"source": "videos", "clip": clip, "videos": videos})
    splits = build_triplets(VideoFolderDataset(path=str(folder)).load(), params, geometry)[:3]
    if write:
        for name, triplets in zip(("train", "val", "test"), splits, strict=True):
            TripletDataset(path=str(out / name), clip_format=clip_format).save(triplets)
    return sum(len(s) for s in splits)


def throughput(repeats: int, workers: int, gpu_tflops: float, mfu: float, smoke: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "videos").mkdir()
        if smoke:  # two of the long-shot videos alone
            folder = Path(tmp) / "videos"
            make_long_shot_videos(folder, 2)
        else:
            folder = make_folder(Path(tmp) / "videos")
            make_long_shot_videos(folder, 6)
        files = sorted(folder.glob("*.mp4"))
        frames = decode_only(files, to_rgb=False)
        out = {name: Path(tmp) / name for name in ("span", "npz")}

        def run(fmt: str, n: int, write: bool = True):
            return lambda: ingest(folder, out[fmt], PAPER_CLIP, PAPER_GEOMETRY, n, write, fmt)

        ways = {
            "decode": lambda: decode_only(files, to_rgb=False),
            "ingest scan": run("span", 1, write=False),
            "spans, 1 worker": run("span", 1),
            f"spans, {workers} workers": run("span", workers),
            "npz clips, 1 worker": run("npz", 1),
            f"npz clips, {workers} workers": run("npz", workers),
        }
        if smoke:  # one process: starting a worker pool costs more than the smoke's whole ingest
            ways = {name: way for name, way in ways.items() if "workers" not in name}
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
        figures: dict = {"files": len(files), "native_frames": frames, "triplets": triplets, "ways": {}}
        for name, seconds in best.items():
            ratio = best["decode"] / seconds
            print(f"  {name:<22} {seconds:7.2f} s  {frames / seconds:7.0f} frames/s  {ratio:5.2f} x decode")
            figures["ways"][name] = {"seconds": round(seconds, 3), "x_decode": round(ratio, 3)}
        figures["stored"] = stored_bytes(out, triplets)
        figures["readers"] = read_back(out, gpu_tflops, mfu)
    return figures


def stored_bytes(out: dict[str, Path], triplets: int) -> dict:
    """What each format wrote for the three splits, per 1000 triplets."""
    print("stored per 1000 triplets (the three splits):")
    sizes = {}
    for fmt, root in out.items():
        total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        sizes[fmt] = total / triplets * 1000
        print(f"  {fmt:<6} {sizes[fmt] / 2**20:10.2f} MiB")
    return {f"{fmt}_mib_per_1000": round(size / 2**20, 3) for fmt, size in sizes.items()}


def read_back(out: dict[str, Path], gpu_tflops: float, mfu: float) -> dict:
    """Triplets a second in one process (a DataLoader worker) per format, against what one GPU's SFT VDM
    step consumes at paper size."""
    rates = {}
    for fmt, root in out.items():
        dataset = TripletDataset(path=str(root / "train"), clip_format=fmt)
        triplets = dataset.load()
        order = np.random.default_rng(0).permutation(len(triplets))
        started = time.perf_counter()
        for i in order:
            triplets.clips(triplets.index["sample_id"].iloc[i])
        rates[fmt] = len(order) / (time.perf_counter() - started)
    flops = sft_vdm_sample_flops()
    consumed = gpu_tflops * 1e12 * mfu / flops
    workers = {fmt: math.ceil(consumed / rate) for fmt, rate in rates.items()}
    print(
        f"read back in one process (a DataLoader worker), train split in random order: "
        f"spans {rates['span']:.1f} triplets/s, npz {rates['npz']:.1f} triplets/s"
    )
    print(
        f"one GPU's paper-size SFT VDM step: {flops / 1e12:.1f} TFLOP per sample (Wan2.1-1.3B forward + "
        f"backward, 33 frames at 352x640); at {gpu_tflops:g} TFLOP/s x MFU {mfu:g} it consumes "
        f"{consumed:.2f} samples/s: {workers['span']} span worker(s) or {workers['npz']} npz worker(s) "
        "keep it fed"
    )
    return {
        "span_triplets_per_s": round(rates["span"], 2),
        "npz_triplets_per_s": round(rates["npz"], 2),
        "sft_vdm_tflop_per_sample": round(flops / 1e12, 2),
        "gpu_samples_per_s": round(consumed, 3),
        "workers_per_gpu": workers,
    }


def sft_vdm_sample_flops() -> float:
    """FLOPs of one SFT VDM sample at paper size (forward and backward of the Wan2.1-1.3B transformer on
    one 33-frame 352x640 clip's latents with the context condition), on the meta device."""
    from diffusers import WanTransformer3DModel
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.paper_scale import PAPER
    from vans_pipelines.models.conditioning import Conditioning

    z = PAPER.vae["z_dim"]
    latent = (PAPER.frames - 1) // PAPER_GEOMETRY["vae_temporal_factor"] + 1
    grid = (latent, PAPER.height // PAPER_GEOMETRY["vae_spatial_factor"], PAPER.width // 8)
    with torch.device("meta"):
        model = WanTransformer3DModel(in_channels=z + Conditioning().condition_channels(z), **PAPER.wan)
        hidden = torch.randn(1, model.config.in_channels, *grid)
        text = torch.randn(1, 512, PAPER.wan["text_dim"])
        timestep = torch.tensor([500.0])
    with FlopCounterMode(display=False) as counter:
        model(hidden, timestep, text, return_dict=False)[0].sum().backward()
    return float(counter.get_total_flops())


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


def measure_memory(folder: Path, out: Path, workers: int, clip_format: str) -> None:
    """(child process) ingest ``folder`` and print its peak memory and the triplets' clip bytes."""
    started = time.perf_counter()
    triplets = ingest(folder, out, SMALL_CLIP, SMALL_GEOMETRY, workers, clip_format=clip_format)
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


def memory(counts: list[int], workers: int) -> list[dict]:
    print(f"memory of a full ingest (node + writing), small videos, {workers} worker(s), fresh process each:")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            folder = Path(tmp) / f"videos_{count}"
            make_small_videos(folder, count)
            for clip_format in ("npz", "span"):
                result = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.ingest_scale",
                        "--measure",
                        str(folder),
                        str(Path(tmp) / f"out_{count}_{clip_format}"),
                        "--workers",
                        str(workers),
                        "--format",
                        clip_format,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=Path(__file__).resolve().parents[1],
                )
                row = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append({"videos": count, "format": clip_format, **row})
                print(
                    f"  {count:5d} videos  {clip_format:<4} {row['triplets']:5d} triplets  peak "
                    f"{row['peak_mb']:7.1f} MB   clips {row['clips_mb']:7.1f} MB (an in-memory ingest holds "
                    f"them)  {row['seconds']:6.1f} s"
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--counts", default="10,100,1000", help="numbers of videos for the memory curve")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--gpu-tflops", type=float, default=989.0, help="dense bf16 peak (H100: 989)")
    parser.add_argument("--mfu", type=float, default=0.4, help="the share of the peak a training step gets")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--smoke", action="store_true", help="two videos, one repeat, a 3-video memory run (the tests run it)"
    )
    parser.add_argument("--measure", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", default="npz", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.counts = 1, "3"
    if args.measure:
        measure_memory(*args.measure, workers=args.workers, clip_format=args.format)
        return
    figures: dict = {}
    if not args.skip_throughput:
        figures["throughput"] = throughput(args.repeats, args.workers, args.gpu_tflops, args.mfu, args.smoke)
    figures["memory"] = memory([int(c) for c in args.counts.split(",")], 1)
    write_figures(args.json, figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
