"""Samples pipeline: triplets + captions → ``samples`` (in memory), the first node of every stage that
trains or evaluates; ``pipeline_registry`` adds it to each (Kedro runs a node shared by two stages once)."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.samples.nodes import make_samples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                make_samples,
                {
                    "train": "train_triplets",
                    "val": "val_triplets",
                    "test": "test_triplets",
                    "captions": "captions",
                    "fps": "params:ingest.clip.fps",
                    "read_workers": "params:run.inference.read_workers",
                    "cache_mb": "params:run.sample_cache_mb",
                },
                "samples",
                name="make_samples_node",
            )
        ]
    )
