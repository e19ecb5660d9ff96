"""Caption stage: captions and reasoning of every target clip, the shared tokenizer, the video-text scorer."""

from vans_pipelines.pipelines.caption.pipeline import create_pipeline

__all__ = ["create_pipeline"]
