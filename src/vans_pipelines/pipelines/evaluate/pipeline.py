"""Evaluate pipeline: every system on the test split → metrics, tables, plots, video grid, report."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.evaluate.nodes import (
    evaluate_systems,
    plot_metrics,
    plot_training_curves,
    render_video_grid,
    summarise_metrics,
    write_report,
    write_system_tables,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                evaluate_systems,
                [
                    "samples",
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
            node(write_system_tables, "evaluation_metrics", "system_tables", name="write_system_tables_node"),
            node(
                summarise_metrics, "evaluation_metrics", "evaluation_summary", name="summarise_metrics_node"
            ),
            node(plot_metrics, "evaluation_metrics", "metric_bars", name="plot_metrics_node"),
            node(
                plot_training_curves,
                ["training_curves", "grpo_vlm_report", "grpo_vdm_report", "params:evaluate"],
                ["training_curves_plot", "training_curves_table"],
                name="plot_training_curves_node",
            ),
            node(
                render_video_grid,
                ["video_grid_clips", "params:evaluate"],
                "video_grid",
                name="render_video_grid_node",
            ),
            node(write_report, "evaluation_metrics", "evaluation_report", name="write_report_node"),
        ]
    )
