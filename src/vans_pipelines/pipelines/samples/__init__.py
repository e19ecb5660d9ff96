"""The samples node every stage that trains or evaluates starts from (the registry adds it to each)."""

from vans_pipelines.pipelines.samples.pipeline import create_pipeline

__all__ = ["create_pipeline"]
