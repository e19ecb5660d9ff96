"""``save_pretrained`` folders (models, adapters, tokenizers, scorers) as Kedro datasets."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from vans_pipelines.datasets._fs import FsspecDataset, atomic_directory


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise DatasetError(f"cannot import loader {dotted!r}: {err}") from err


class PretrainedFolderDataset(FsspecDataset):
    """Any object with ``save_pretrained(dir)``, loaded back by ``loader`` (a class or function path
    with ``from_pretrained(dir)`` / called with ``dir``). Saves go to a temporary folder that replaces the
    old one only when complete. Remote paths (fsspec) are staged through a local temporary folder.

    Example catalog entry::

        sft_vlm:
          type: vans_pipelines.datasets.PretrainedFolderDataset
          path: data/06_models/sft_vlm
          loader: vans_pipelines.models.vlm.VisionLanguageModel
    """

    def __init__(
        self,
        *,
        path: str,
        loader: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(path=path, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._loader_path = loader

    @property
    def _local(self) -> bool:
        return self._protocol in ("file", "")

    def _load_from(self, directory: str) -> Any:
        loader = _import(self._loader_path)
        load = getattr(loader, "from_pretrained", loader)
        return load(directory)

    def load(self) -> Any:
        self._require()
        if self._local:
            return self._load_from(self._path)
        with tempfile.TemporaryDirectory() as tmp:
            self._fs.get(self._path.rstrip("/") + "/", tmp, recursive=True)
            return self._load_from(tmp)

    def save(self, data: Any) -> None:
        if not hasattr(data, "save_pretrained"):
            raise DatasetError(f"{self._path}: {type(data).__name__} has no save_pretrained()")
        if self._local:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            with atomic_directory(self._fs, self._path) as tmp:
                data.save_pretrained(tmp)
            return
        with tempfile.TemporaryDirectory() as local, atomic_directory(self._fs, self._path) as tmp:
            data.save_pretrained(local)
            self._fs.put(local.rstrip("/") + "/", tmp, recursive=True)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol, "loader": self._loader_path}
