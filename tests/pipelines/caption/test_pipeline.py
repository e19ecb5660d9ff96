"""``kedro run --pipelines caption`` through a real KedroSession: its failures on real videos. (Its models and
report are checked by the sft pipeline test, which runs ingest, caption and sft together.)"""

import shutil

import pytest

from tests.runs import run
from vans_pipelines.pipelines.caption.nodes import CaptionError


def test_real_videos_without_a_captioner_name_the_key(project_copy, shipped_videos):
    raw = project_copy / "data" / "01_raw"
    raw.mkdir(parents=True, exist_ok=True)
    for video in shipped_videos:
        shutil.copy(video, raw / video.name)
    with pytest.raises(CaptionError, match=r"caption\.captioner\.path"):
        run(project_copy, ["ingest", "caption"], {"ingest": {"source": "videos"}})
