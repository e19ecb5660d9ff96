"""Shot boundaries with PySceneDetect's content detector, fed frame by frame (no second decode)."""

from __future__ import annotations

import numpy as np
from scenedetect import ContentDetector, FrameTimecode


class ShotDetector:
    """Collects hard cuts from frames pushed in decode order (small BGR images, see ``analysis_image``).

    Use it as the ``on_frame`` callback of :func:`~vans_pipelines.video.io.decode_resampled`.
    ``threshold`` is PySceneDetect's content score (HSV change, 0-255; its default is 27);
    cuts closer than ``min_shot_seconds`` to the previous one are suppressed.
    """

    def __init__(self, threshold: float = 27.0, min_shot_seconds: float = 0.5):
        self.threshold = threshold
        self.min_shot_seconds = min_shot_seconds
        self.fps = 0.0
        self.cut_frames: list[int] = []
        self._detector: ContentDetector | None = None

    def __call__(self, index: int, bgr: np.ndarray, native_fps: float) -> None:
        if self._detector is None:
            self.fps = native_fps if native_fps > 0 else 25.0
            min_len = max(1, round(self.min_shot_seconds * self.fps))
            self._detector = ContentDetector(threshold=self.threshold, min_scene_len=min_len)
        for cut in self._detector.process_frame(FrameTimecode(index, fps=self.fps), bgr):
            self.cut_frames.append(int(cut.frame_num))

    def cut_times(self) -> list[float]:
        """Cut positions in seconds (start of each new shot)."""
        return [f / self.fps for f in self.cut_frames] if self.fps else []
