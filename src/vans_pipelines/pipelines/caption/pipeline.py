"""Caption pipeline: triplets → captions table, tokenizer, video-text scorer."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.caption.nodes import build_tokenizer, caption_triplets, train_scorer


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                caption_triplets,
                ["train_triplets", "val_triplets", "test_triplets", "params:caption", "run_context"],
                "captions",
                name="caption_triplets_node",
            ),
            node(build_tokenizer, ["captions", "params:caption"], "tokenizer", name="build_tokenizer_node"),
            node(
                train_scorer,
                [
                    "train_triplets",
                    "val_triplets",
                    "captions",
                    "tokenizer",
                    "params:caption",
                    "run_context",
                ],
                ["scorer", "scorer_report"],
                name="train_scorer_node",
            ),
        ]
    )
