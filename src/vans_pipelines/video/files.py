"""Raw video files as ingest sees them: where each file is (any fsspec filesystem), how to open it for
PyAV, and its content fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import fsspec

from vans_pipelines.video.spans import file_fingerprint, is_local


@dataclass(frozen=True)
class VideoFile:
    relative_path: str  # posix path under the folder, e.g. "procedural/cooking.mp4"
    size_bytes: int
    _fs: fsspec.AbstractFileSystem
    _full_path: str

    def source(self) -> str | IO[bytes]:
        """What PyAV should open: a local path when there is one (fast, seekable), else a file object."""
        if self.is_local:
            return self._full_path
        return self._fs.open(self._full_path, "rb")

    @property
    def is_local(self) -> bool:
        return is_local(self._fs)

    @property
    def uri(self) -> str:
        """Where the file is, for any later reader: its local path, or its URL (``s3://...``)."""
        return self._full_path if self.is_local else self._fs.unstrip_protocol(self._full_path)

    def fingerprint(self) -> str:
        """Its content fingerprint (:func:`vans_pipelines.video.spans.file_fingerprint`)."""
        return file_fingerprint(self._fs, self._full_path, self.size_bytes)


@dataclass(frozen=True)
class VideoFolder:
    root: str
    files: tuple[VideoFile, ...]
    exists: bool
