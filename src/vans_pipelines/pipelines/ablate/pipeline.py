"""Ablate pipeline: the paper's ablation recipes and the verifiable reward, trained from the SFT models over
training seeds, judged on the test split by the world's oracle → ablation.md, ablation.json, plots."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.ablate.nodes import (
    plot_ablation,
    run_ablation,
    summarise_ablation,
    write_ablation_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                run_ablation,
                [
                    "samples",
                    "sft_vlm",
                    "sft_vdm",
                    "scorer",
                    "params:ablate",
                    "params:grpo_vlm",
                    "params:grpo_vdm",
                    "params:evaluate",
                    "run_context",
                ],
                ["ablation_metrics", "ablation_samples"],
                name="run_ablation_node",
            ),
            node(summarise_ablation, "ablation_metrics", "ablation_summary", name="summarise_ablation_node"),
            node(plot_ablation, "ablation_metrics", "ablation_plot", name="plot_ablation_node"),
            node(
                write_ablation_report,
                "ablation_metrics",
                "ablation_report",
                name="write_ablation_report_node",
            ),
        ]
    )
