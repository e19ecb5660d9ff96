"""Ingest: build (context clip, question, target clip) triplets and split them train / val / test.

Two sources, chosen by ``ingest.source``: ``synthetic`` renders the project's VNEP world (captions
included); ``videos`` cuts every video under the raw folder into pairs of consecutive shot segments
(:mod:`vans_pipelines.ingest`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from vans_pipelines.ingest import ingest_videos, render_synthetic, shown_root
from vans_pipelines.params import IngestParams, RunContext, validate_parameters
from vans_pipelines.triplets import SPLITS, TripletSet
from vans_pipelines.video.files import VideoFolder

logger = logging.getLogger(__name__)


def build_triplets(
    raw_videos: VideoFolder,
    ingest: dict[str, Any],
    video_geometry: dict[str, Any],
    run_context: RunContext | None = None,
) -> tuple[TripletSet, TripletSet, TripletSet, dict[str, Any]]:
    """Triplets of each split from the configured source, plus an ingest report (counts, quarantine).
    Paths in the report and the triplets are relative to the Kedro project (``run_context``) when the raw
    folder lies inside it, so they do not carry the machine's absolute paths."""
    params: IngestParams = validate_parameters({"ingest": ingest, "video_geometry": video_geometry})["ingest"]
    started = time.perf_counter()
    if params.source == "synthetic":
        splits = render_synthetic(params)
        report: dict[str, Any] = {"source": "synthetic", "quarantined": []}
    else:
        project = run_context.project_path if run_context is not None else None
        splits, report = ingest_videos(raw_videos, params, shown_root(raw_videos.root, project))
    report["triplets"] = {s: len(splits[s]) for s in SPLITS}
    report["seconds"] = round(time.perf_counter() - started, 3)
    logger.info("ingest (%s): %s triplets in %.1f s", params.source, report["triplets"], report["seconds"])
    return splits["train"], splits["val"], splits["test"], report
