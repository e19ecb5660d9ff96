"""The paper's ablations and a verifiable reward on the synthetic world, judged by its oracle."""

from vans_pipelines.pipelines.ablate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
