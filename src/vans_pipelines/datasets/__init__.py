"""Kedro datasets of the project: triplet collections, raw video folders, save_pretrained folders, atomic
JSON reports and parquet tables."""

from vans_pipelines.datasets.json_dataset import AtomicJSONDataset
from vans_pipelines.datasets.optuna_storage import OptunaStorageDataset
from vans_pipelines.datasets.pretrained_folder import PretrainedFolderDataset
from vans_pipelines.datasets.table import AtomicParquetDataset
from vans_pipelines.datasets.tensorboard_scalars import TensorBoardScalarsDataset
from vans_pipelines.datasets.triplet_dataset import TripletDataset
from vans_pipelines.datasets.video_file import VideoFileDataset
from vans_pipelines.datasets.video_folder import VideoFile, VideoFolder, VideoFolderDataset

__all__ = [
    "AtomicJSONDataset",
    "AtomicParquetDataset",
    "OptunaStorageDataset",
    "PretrainedFolderDataset",
    "TensorBoardScalarsDataset",
    "TripletDataset",
    "VideoFile",
    "VideoFileDataset",
    "VideoFolder",
    "VideoFolderDataset",
]
