"""A JSON file dataset with atomic saves (reports, quarantine lists, metrics)."""

from __future__ import annotations

import json
from typing import Any

from kedro.io import DatasetError

from vans_pipelines.datasets._fs import FsspecDataset, atomic_file


class AtomicJSONDataset(FsspecDataset):
    """Any JSON-serialisable value in one file, written via a temporary file and a rename.

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
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(path=path, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._indent = indent

    def load(self) -> Any:
        self._require()
        with self._fs.open(self._path, "r") as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{self._path} is not valid JSON: {err}") from err

    def save(self, data: Any) -> None:
        text = json.dumps(data, indent=self._indent, sort_keys=False, default=str)  # fails before any write
        with atomic_file(self._fs, self._path, "w") as f:
            f.write(text + "\n")
