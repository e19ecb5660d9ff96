"""Evaluate pipeline: every system on the test split → metrics, tables, plots, video grid, report."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.evaluate.nodes import (
    evaluate_systems_node,
    plot_metrics_node,
    plot_training_curves_node,
    render_video_grid_node,
    summarise_metrics_node,
    write_report_node,
    write_system_tables_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                evaluate_systems_node,
                [
                    "test_triplets",
                    "captions",
                    "sft_vlm",
                    "grpo_vlm",
                    "sft_vdm",
                    "grpo_vdm",
                    "scorer",
                    "params:evaluate",
                    "run_context",
                ],
                ["evaluation_metrics", "evaluation_samples", "video_grid_clips"],
                name="evaluate_systems_node",
            ),
            node(
                write_system_tables_node,
                "evaluation_metrics",
                "system_tables",
                name="write_system_tables_node",
            ),
            node(
                summarise_metrics_node,
                "evaluation_metrics",
                "evaluation_summary",
                name="summarise_metrics_node",
            ),
            node(plot_metrics_node, "evaluation_metrics", "metric_bars", name="plot_metrics_node"),
            node(
                plot_training_curves_node,
                ["training_curves", "grpo_vlm_report", "grpo_vdm_report", "params:evaluate"],
                ["training_curves_plot", "training_curves_table"],
                name="plot_training_curves_node",
            ),
            node(
                render_video_grid_node,
                ["video_grid_clips", "params:evaluate"],
                "video_grid",
                name="render_video_grid_node",
            ),
            node(write_report_node, "evaluation_metrics", "evaluation_report", name="write_report_node"),
        ]
    )
