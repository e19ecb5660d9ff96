"""Filesystem plumbing shared by the datasets: fsspec resolution and write-then-rename saves (a failed
save leaves the previous output whole and no half-written one)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_protocol_and_path


def resolve_filesystem(
    path: str, credentials: dict[str, Any] | None, fs_args: dict[str, Any] | None
) -> tuple[str, str, fsspec.AbstractFileSystem]:
    """(protocol, path without protocol, filesystem) for a dataset's ``path``, as Kedro datasets do."""
    protocol, bare = get_protocol_and_path(path)
    return protocol, bare, fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))


def _sibling(path: str, tag: str) -> str:
    return f"{path.rstrip('/')}.{tag}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_directory(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[str]:
    """Yield a fresh temporary directory beside ``path``; on success it replaces ``path``."""
    tmp = _sibling(path, "tmp")
    fs.makedirs(tmp, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        fs.rm(tmp, recursive=True)
        raise
    old = None
    if fs.exists(path):
        old = _sibling(path, "old")
        fs.mv(path, old, recursive=True)
    fs.mv(tmp, path, recursive=True)
    if old is not None:
        fs.rm(old, recursive=True)


@contextmanager
def atomic_file(fs: fsspec.AbstractFileSystem, path: str, mode: str = "wb") -> Iterator:
    """Yield a file object for a temporary sibling of ``path``; on success it becomes ``path``."""
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    fs.makedirs(parent, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        with fs.open(tmp, mode) as f:
            yield f
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise
    fs.mv(tmp, path)


class FsspecDataset(AbstractDataset):
    """What the project's file datasets share: a ``path`` on any fsspec filesystem (``credentials`` and
    ``fs_args`` as Kedro's own datasets take them), Kedro's ``metadata``, and a clear error when loading
    what no stage has written yet. Subclasses add their own arguments and ``_describe`` entries."""

    def __init__(
        self,
        *,
        path: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._protocol, self._path, self._fs = resolve_filesystem(path, credentials, fs_args)
        self.metadata = metadata

    def _require(self, path: str | None = None) -> str:
        """``path`` (by default the dataset's) if it exists, else a :class:`DatasetError` saying so."""
        path = self._path if path is None else path
        if not self._fs.exists(path):
            raise DatasetError(f"{path} does not exist; run the stage that writes it first")
        return path

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol}
