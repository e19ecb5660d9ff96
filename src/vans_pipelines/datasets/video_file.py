"""A Kedro dataset for one video file (mp4 or gif) holding a uint8 ``[T, H, W, 3]`` array."""

from __future__ import annotations

from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError
from PIL import Image

from vans_pipelines.datasets._fs import atomic_file, resolve_filesystem
from vans_pipelines.video.io import decode_all, encode_video


class VideoFileDataset(AbstractDataset[np.ndarray, np.ndarray]):
    """Saves frames as H.264 mp4 (widely playable, lossy) or an animated gif, chosen by the extension;
    written via a temporary file and a rename. Loads the decoded frames.

    Example catalog entry::

        video_grid:
          type: vans_pipelines.datasets.VideoFileDataset
          path: data/08_reporting/video_grid.mp4
          fps: 8
    """

    def __init__(
        self,
        *,
        path: str,
        fps: float = 8.0,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._protocol, self._path, self._fs = resolve_filesystem(path, credentials, fs_args)
        self._format = self._path.rsplit(".", 1)[-1].lower()
        if self._format not in ("mp4", "gif"):
            raise DatasetError(f"{path}: VideoFileDataset writes .mp4 or .gif files")
        self._fps = fps
        self.metadata = metadata

    def load(self) -> np.ndarray:
        if not self._fs.exists(self._path):
            raise DatasetError(f"{self._path} does not exist; run the stage that writes it first")
        with self._fs.open(self._path, "rb") as f:
            if self._format == "gif":
                image = Image.open(f)
                frames = []
                for i in range(getattr(image, "n_frames", 1)):
                    image.seek(i)
                    frames.append(np.asarray(image.convert("RGB")))
                return np.stack(frames)
            return decode_all(f)

    def save(self, data: np.ndarray) -> None:
        frames = np.asarray(data)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise DatasetError(
                f"{self._path}: expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}"
            )
        with atomic_file(self._fs, self._path, "wb") as f:
            if self._format == "gif":
                images = [Image.fromarray(frame) for frame in frames]
                images[0].save(
                    f,
                    format="GIF",
                    save_all=True,
                    append_images=images[1:],
                    duration=int(1000 / self._fps),
                    loop=0,
                )
            else:
                encode_video(frames, f, fps=self._fps, codec="libx264")

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol, "fps": self._fps}
