"""Ablate pipeline: the paper's ablation recipes and the verifiable reward, trained from the SFT models over
training seeds, judged on the test split by the world's oracle → ablation.md, ablation.json, plots."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.ablate.nodes import (
    plot_ablation_node,
    run_ablation_node,
    summarise_ablation_node,
    write_ablation_report_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                run_ablation_node,
                [
                    "train_triplets",
                    "test_triplets",
                    "captions",
                    "sft_vlm",
                    "sft_vdm",
                    "scorer",
                    "params:ablate",
                    "params:grpo_vlm",
                    "params:grpo_vdm",
                    "params:evaluate",
                    "params:ingest.clip.fps",
                    "run_context",
                ],
                ["ablation_metrics", "ablation_samples"],
                name="run_ablation_node",
            ),
            node(
                summarise_ablation_node,
                "ablation_metrics",
                "ablation_summary",
                name="summarise_ablation_node",
            ),
            node(plot_ablation_node, "ablation_metrics", "ablation_plot", name="plot_ablation_node"),
            node(
                write_ablation_report_node,
                "ablation_metrics",
                "ablation_report",
                name="write_ablation_report_node",
            ),
        ]
    )
