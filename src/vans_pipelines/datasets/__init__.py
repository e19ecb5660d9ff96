"""Kedro datasets of the project: triplet collections, raw video folders, atomic JSON reports."""

from vans_pipelines.datasets.json_dataset import AtomicJSONDataset
from vans_pipelines.datasets.triplet_dataset import TripletDataset
from vans_pipelines.datasets.video_folder import VideoFile, VideoFolder, VideoFolderDataset

__all__ = ["AtomicJSONDataset", "TripletDataset", "VideoFile", "VideoFolder", "VideoFolderDataset"]
