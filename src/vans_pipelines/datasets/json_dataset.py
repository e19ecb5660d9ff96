"""A JSON file dataset with atomic saves (reports, quarantine lists, metrics)."""

from __future__ import annotations

import json
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vans_pipelines.datasets._fs import atomic_file, resolve_filesystem


class AtomicJSONDataset(AbstractDataset[Any, Any]):
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
        self._protocol, self._path, self._fs = resolve_filesystem(path, credentials, fs_args)
        self._indent = indent
        self.metadata = metadata

    def load(self) -> Any:
        if not self._fs.exists(self._path):
            raise DatasetError(f"{self._path} does not exist; run the stage that writes it first")
        with self._fs.open(self._path, "r") as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{self._path} is not valid JSON: {err}") from err

    def save(self, data: Any) -> None:
        text = json.dumps(data, indent=self._indent, sort_keys=False, default=str)  # fails before any write
        with atomic_file(self._fs, self._path, "w") as f:
            f.write(text + "\n")

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol}
