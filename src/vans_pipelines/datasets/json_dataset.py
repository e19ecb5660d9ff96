"""A JSON file dataset with atomic saves (reports, quarantine lists, metrics)."""

from __future__ import annotations

import json
from typing import Any

from kedro.io import DatasetError

from vans_pipelines.datasets._fs import FsspecDataset, atomic_file
from vans_pipelines.triplets import Shard


class AtomicJSONDataset(FsspecDataset):
    """Any JSON-serialisable value in one file, written via a temporary file and a rename.

    With ``shard_field``, a mapping whose ``shard_field`` holds ``"k/n"`` (one shard of a job array's
    work) is written to ``<stem>.shards/<k>-of-<n>.json`` instead, so the shards do not overwrite each
    other; the dataset then loads as ``{"shards": {"k/n": value, ...}}`` until a whole value is saved.

    Example catalog entry::

        ingest_quarantine:
          type: vans_pipelines.datasets.AtomicJSONDataset
          path: data/02_intermediate/quarantine.json
    """

    def __init__(
        self,
        *,
        path: str,
        indent: int = 2,
        shard_field: str | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(path=path, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._indent = indent
        self._shard_field = shard_field

    def _shards_root(self) -> str:
        return f"{self._path.removesuffix('.json')}.shards"

    def _read(self, path: str) -> Any:
        with self._fs.open(path, "r") as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path} is not valid JSON: {err}") from err

    def load(self) -> Any:
        if self._shard_field and not self._fs.exists(self._path) and self._fs.isdir(self._shards_root()):
            values = [self._read(p) for p in sorted(self._fs.glob(f"{self._shards_root()}/*.json"))]
            return {"shards": {str(v.get(self._shard_field)): v for v in values}}
        return self._read(self._require())

    def save(self, data: Any) -> None:
        text = json.dumps(data, indent=self._indent, sort_keys=False, default=str)  # fails before any write
        shard = data.get(self._shard_field) if self._shard_field and isinstance(data, dict) else None
        if shard:
            with atomic_file(self._fs, f"{self._shards_root()}/{Shard.parse(shard).name}.json", "w") as f:
                f.write(text + "\n")
            if self._fs.exists(self._path):  # a whole run's value no longer describes the data
                self._fs.rm(self._path)
            return
        with atomic_file(self._fs, self._path, "w") as f:
            f.write(text + "\n")
        if self._shard_field and self._fs.isdir(self._shards_root()):
            self._fs.rm(self._shards_root(), recursive=True)
