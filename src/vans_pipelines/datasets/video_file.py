"""A Kedro dataset for one video file (mp4 or gif) holding a uint8 ``[T, H, W, 3]`` array."""

from __future__ import annotations

from typing import Any

import numpy as np
from kedro.io import DatasetError
from PIL import Image

from vans_pipelines.datasets._fs import FsspecDataset, atomic_file
from vans_pipelines.video.io import decode_all, encode_video


class VideoFileDataset(FsspecDataset):
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
        super().__init__(path=path, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._format = self._path.rsplit(".", 1)[-1].lower()
        if self._format not in ("mp4", "gif"):
            raise DatasetError(f"{path}: VideoFileDataset writes .mp4 or .gif files")
        self._fps = fps

    def load(self) -> np.ndarray:
        self._require()
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

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol, "fps": self._fps}
