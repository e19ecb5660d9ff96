"""Ingest as a library: (context clip, question, target clip) triplets of each split, from the synthetic
world or from a folder of videos (:mod:`vans_pipelines.pipelines.ingest` is the Kedro node around it).

Videos are cut into pairs of consecutive shot segments and split by source file, so no video contributes
to two splits; each pair's question is drawn from its folder's family, and the caption is left to the
caption stage. Bad files are skipped and reported.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vans_pipelines.params import IngestParams
from vans_pipelines.triplets import FAMILIES, QUESTIONS, REQUIRED_COLUMNS, SPLITS, Shard, TripletSet
from vans_pipelines.video import VideoError
from vans_pipelines.video.clips import PairSpan, ScanSettings
from vans_pipelines.video.files import VideoFile, VideoFolder
from vans_pipelines.video.spans import SPAN_COLUMNS, span_columns
from vans_pipelines.video.streaming import SourcePairs, StreamedPairClips, scan_videos
from vans_pipelines.world import render_split

logger = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """Ingest cannot produce any triplet; the message says which folder or key to fix."""


def render_synthetic(params: IngestParams) -> dict[str, TripletSet]:
    """Each split of the synthetic world, rendered from ``ingest.seed`` at the clip geometry."""
    clip, world = params.clip, params.synthetic
    counts = {"train": world.num_train, "val": world.num_val, "test": world.num_test}
    return {
        split: render_split(
            params.seed,
            split,
            counts[split],
            context_frames=clip.context_frames,
            target_frames=clip.target_frames,
            height=clip.height,
            width=clip.width,
            families=tuple(world.families),
        )
        for split in SPLITS
    }


def family_of(relative_path: str, default: str) -> str:
    """A video's question family: its top folder when that is a family name, else ``default``.

    >>> family_of("procedural/cooking/egg.mp4", "predictive")
    'procedural'
    >>> family_of("holiday.mp4", "predictive")
    'predictive'
    """
    top = relative_path.split("/", 1)[0] if "/" in relative_path else ""
    return top if top in FAMILIES else default


def assign_splits(paths: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Source video → split, by a seeded shuffle. With three or more videos every split asked for
    (fraction > 0) gets at least one video, and train always keeps at least one."""
    order = sorted(paths)
    np.random.default_rng(seed).shuffle(order)
    n = len(order)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    if n >= 3:
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
    while n_test + n_val >= n and (n_test or n_val):
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    assignment = {}
    for i, path in enumerate(order):
        assignment[path] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return assignment


def shown_root(root: str, project_path: str | None) -> str:
    """``root`` relative to the project when it lies inside it (reports stay machine-independent)."""
    if project_path is None or not Path(root).is_absolute():
        return root
    try:
        return Path(root).resolve().relative_to(Path(project_path).resolve()).as_posix()
    except ValueError:
        return root


def ingest_videos(
    folder: VideoFolder, params: IngestParams, shown: str | None = None
) -> tuple[dict[str, TripletSet], dict[str, Any]]:
    """Triplets from the videos under ``folder`` (of this run's shard, ``ingest.videos.shard``);
    ``shown`` is how reports name the folder. Videos are scanned in ``ingest.videos.workers``
    processes; the returned sets cut their clips when written (:mod:`vans_pipelines.video.streaming`),
    so no more than a few videos are in memory at once. Each split's index is in ``sample_id`` order,
    which a union of shards reproduces."""
    shown = shown or folder.root
    if not folder.exists:
        raise IngestError(
            f"raw video folder {shown!r} does not exist: put videos there, or set ingest.source=synthetic"
        )
    if not folder.files:
        raise IngestError(f"raw video folder {shown!r} holds no video files (ingest.source=videos)")
    opts = params.videos
    shard = Shard.parse(opts.shard) if opts.shard else None
    # Splits come from the whole listing, so every shard assigns a video the same split.
    listing = [video.relative_path for video in folder.files]
    split_of = assign_splits(listing, opts.val_fraction, opts.test_fraction, params.seed)
    videos = shard.take(folder.files) if shard else list(folder.files)
    settings = scan_settings(params)
    ingested, quarantined = _scan(videos, settings, opts.workers, shown)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    sources = []
    for video, spans in ingested:
        video_rows = _video_rows(video, spans, split_of[video.relative_path], params, shown)
        rows[split_of[video.relative_path]].extend(video_rows)
        sources.append(SourcePairs(video, tuple(r["sample_id"] for r in video_rows), tuple(spans)))
    clips = StreamedPairClips(sources, settings, opts.workers)
    report = {
        "source": "videos",
        "folder": shown,
        "videos_seen": len(videos),
        "videos_ingested": len(ingested),
        "videos_per_split": {s: sum(split_of[v.relative_path] == s for v, _ in ingested) for s in SPLITS},
        "quarantined": quarantined,
        "workers": opts.workers,
    }
    if shard is not None:
        report["shard"] = str(shard)
    sets = {s: TripletSet(_index(rows[s]), clips, shard=shard) for s in SPLITS}
    return sets, report


def _scan(
    videos: list[VideoFile], settings: ScanSettings, workers: int, shown: str
) -> tuple[list[tuple[VideoFile, list[PairSpan]]], list[dict[str, str]]]:
    """(video, pair spans) of each usable video, and the quarantined ones with the reason."""
    scans = scan_videos(videos, settings, workers)
    quarantined = [
        {"path": f"{shown}/{video.relative_path}", "reason": str(scan)}
        for video, scan in zip(videos, scans, strict=True)
        if isinstance(scan, VideoError)
    ]
    for q in quarantined:
        logger.warning("skipping %s: %s", q["path"], q["reason"])
    ingested = [(v, scan) for v, scan in zip(videos, scans, strict=True) if not isinstance(scan, VideoError)]
    if videos and not ingested:
        reasons = "; ".join(f"{q['path']}: {q['reason']}" for q in quarantined[:5])
        raise IngestError(f"none of the {len(videos)} videos under {shown!r} could be ingested ({reasons})")
    return ingested, quarantined


def scan_settings(params: IngestParams) -> ScanSettings:
    """How a video is cut into pairs of shot segments (:mod:`vans_pipelines.video.clips`)."""
    clip, opts = params.clip, params.videos
    return ScanSettings(
        fps=clip.fps,
        height=clip.height,
        width=clip.width,
        context_frames=clip.context_frames,
        target_frames=clip.target_frames,
        shot_threshold=opts.shot_threshold,
        min_shot_seconds=opts.min_shot_seconds,
        max_pairs=opts.max_pairs_per_video,
    )


def _index(rows: list[dict[str, Any]]) -> pd.DataFrame:
    times = ["context_start", "target_start", "target_stop", "crosses_cut"]
    columns = [*REQUIRED_COLUMNS, *times, *SPAN_COLUMNS]
    return pd.DataFrame(rows, columns=columns).sort_values("sample_id", kind="stable").reset_index(drop=True)


def _video_rows(
    video: VideoFile, spans: Sequence[PairSpan], split: str, params: IngestParams, shown: str
) -> list[dict[str, Any]]:
    """The index rows of one video's pairs (the question drawn per pair from the video's own seed), with
    where each pair lies in the file (:data:`~vans_pipelines.video.spans.SPAN_COLUMNS`, what span triplets
    keep instead of pixels)."""
    rel = video.relative_path
    key = zlib.crc32(rel.encode())
    clip = params.clip
    uri, source_fingerprint = video.uri, video.fingerprint()
    family = family_of(rel, params.videos.default_family)
    rng = np.random.default_rng([params.seed, key])
    questions = QUESTIONS[family]
    fps = params.clip.fps
    return [
        {
            "sample_id": f"video-{key:08x}-{k:04d}",
            "split": split,
            "family": family,
            "question": questions[int(rng.integers(len(questions)))],
            "caption": None,
            "source": f"{shown}/{rel}",
            **span.seconds(fps),
            "crosses_cut": span.crosses_cut,
            **span_columns(
                uri,
                source_fingerprint,
                fps,
                clip.height,
                clip.width,
                (span.context_start, span.context_stop),
                (span.target_start, span.target_stop),
            ),
        }
        for k, span in enumerate(spans)
    ]
