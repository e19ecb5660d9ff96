"""A Kedro dataset that hands a node the Optuna storage of a study (SQLite file or any RDB URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from kedro.io import AbstractDataset, DatasetError


class OptunaStorageDataset(AbstractDataset[None, optuna.storages.BaseStorage]):
    """Loads an Optuna RDB storage (with heartbeats, so trials of a killed worker are detected and re-done).
    Optuna writes each trial as it finishes; the dataset itself is never saved. Give ``path`` for a SQLite
    file (resolved under the project like every catalog path) or ``url`` for any RDB;
    ``credentials: {url: ...}`` (e.g. from ``conf/local/credentials.yml``) overrides both, so workers on
    several machines can share one PostgreSQL / MySQL study.

    Example catalog entry::

        tune_storage:
          type: vans_pipelines.datasets.OptunaStorageDataset
          path: data/07_model_output/tune/study.db
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        url: str | None = None,
        heartbeat_interval: int = 30,
        grace_period: int = 120,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        url = (credentials or {}).get("url", url)
        if url is None:
            if path is None:
                raise DatasetError("OptunaStorageDataset needs `path` (a SQLite file) or `url` (any RDB)")
            url = f"sqlite:///{Path(path).as_posix()}"
        self._url = url
        self._heartbeat = heartbeat_interval
        self._grace = grace_period
        self.metadata = metadata

    def _sqlite_file(self) -> Path | None:
        prefix = "sqlite:///"
        return Path(self._url[len(prefix) :]) if self._url.startswith(prefix) else None

    def load(self) -> optuna.storages.BaseStorage:
        file = self._sqlite_file()
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        try:
            return optuna.storages.RDBStorage(
                self._url, heartbeat_interval=self._heartbeat, grace_period=self._grace
            )
        except Exception as err:
            raise DatasetError(f"cannot open the Optuna storage {self._describe()['url']}: {err}") from err

    def save(self, data: Any) -> None:
        raise DatasetError("OptunaStorageDataset is read-only: Optuna writes trials as they finish")

    def _exists(self) -> bool:
        file = self._sqlite_file()
        return file.is_file() if file is not None else True

    def _describe(self) -> dict[str, Any]:
        # Never print a password of an RDB URL.
        url = self._url
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return {"url": url}
