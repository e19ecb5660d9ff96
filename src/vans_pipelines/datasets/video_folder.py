"""Kedro dataset for a folder of raw videos, read lazily (like Kedro's PartitionedDataset).

Loading lists the files; nothing is decoded until a node asks for a file, so the ingest node sees every
file (and can quarantine the bad ones) without the catalog ever holding all videos in memory.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vans_pipelines.datasets._fs import resolve_filesystem
from vans_pipelines.video.files import VideoFile, VideoFolder


class VideoFolderDataset(AbstractDataset[None, VideoFolder]):
    """Lists videos under ``path`` (recursively) whose extension is in ``extensions``.

    Read-only: saving raises. A missing folder loads as ``VideoFolder(exists=False)`` so that a pipeline
    not using raw videos (the synthetic source) still runs; the node that needs them raises a clear error.
    """

    def __init__(
        self,
        *,
        path: str,
        extensions: list[str] | tuple[str, ...] = ("mp4", "mov", "avi", "mkv", "webm"),
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._protocol, self._path, self._fs = resolve_filesystem(path, credentials, fs_args)
        self._extensions = tuple(e.lower().lstrip(".") for e in extensions)
        self.metadata = metadata

    def load(self) -> VideoFolder:
        # as the filesystem spells its paths (memory:// roots start with "/"), so relative paths are
        # relative to the folder on every filesystem
        root = self._fs._strip_protocol(self._path).rstrip("/")
        if not self._fs.isdir(root):
            return VideoFolder(root=root, files=(), exists=False)
        files = []
        for full, info in sorted(self._fs.find(root, detail=True).items()):
            rel = full[len(root) :].lstrip("/") if full.startswith(root) else full
            name = rel.rsplit("/", 1)[-1]
            if (
                name.startswith(".")
                or "." not in name
                or name.rsplit(".", 1)[1].lower() not in self._extensions
            ):
                continue
            files.append(VideoFile(rel, int(info.get("size") or 0), self._fs, full))
        return VideoFolder(root=root, files=tuple(files), exists=True)

    def save(self, data: None) -> None:
        raise DatasetError(f"VideoFolderDataset({self._path}) is read-only: put raw videos there by hand")

    def _exists(self) -> bool:
        return self._fs.isdir(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol, "extensions": self._extensions}
