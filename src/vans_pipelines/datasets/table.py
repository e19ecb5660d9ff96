"""A pandas table in one parquet file with atomic saves (captions, per-sample scores)."""

from __future__ import annotations

import io

import pandas as pd
from kedro.io import DatasetError

from vans_pipelines.datasets._fs import FsspecDataset, atomic_file


class AtomicParquetDataset(FsspecDataset):
    """Example catalog entry::

    captions:
      type: vans_pipelines.datasets.AtomicParquetDataset
      path: data/03_primary/captions.parquet
    """

    def load(self) -> pd.DataFrame:
        self._require()
        with self._fs.open(self._path, "rb") as f:
            return pd.read_parquet(f)

    def save(self, data: pd.DataFrame) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DatasetError(f"{self._path}: expected a pandas DataFrame, got {type(data).__name__}")
        buffer = io.BytesIO()
        data.to_parquet(buffer, index=False)  # fails before anything is written
        with atomic_file(self._fs, self._path, "wb") as f:
            f.write(buffer.getvalue())
