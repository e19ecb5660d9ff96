"""The ``ingest`` pipeline."""

from vans_pipelines.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
