"""Video I/O (PyAV), shot detection (PySceneDetect) and clip sampling; no Kedro here."""

from vans_pipelines.video.io import DecodedVideo, VideoError, decode_all, decode_resampled, encode_video
from vans_pipelines.video.shots import ShotDetector

__all__ = ["DecodedVideo", "ShotDetector", "VideoError", "decode_all", "decode_resampled", "encode_video"]
