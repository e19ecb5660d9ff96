"""Ingest pipeline: raw videos or the synthetic world → train / val / test triplets + ingest report."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.ingest.nodes import build_triplets


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                func=build_triplets,
                inputs=["raw_videos", "params:ingest", "params:video_geometry", "run_context"],
                outputs=["train_triplets", "val_triplets", "test_triplets", "ingest_report"],
                name="build_triplets_node",
            )
        ]
    )
