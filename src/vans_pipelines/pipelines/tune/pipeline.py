"""Tune pipeline: Optuna study of short stage-1 runs → best weights as a parameters file, plots."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.tune.nodes import (
    plot_optimisation_history,
    plot_parameter_importance,
    run_study,
    write_tuned_parameters,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                run_study,
                [
                    "samples",
                    "sft_vlm",
                    "sft_vdm",
                    "scorer",
                    "tune_storage",
                    "params:tune",
                    "params:grpo_vlm",
                    "run_context",
                ],
                "tune_summary",
                name="run_study_node",
            ),
            node(
                write_tuned_parameters,
                ["tune_summary", "params:grpo_vlm"],
                "tuned_parameters",
                name="write_tuned_parameters_node",
            ),
            node(
                plot_optimisation_history,
                "tune_summary",
                "tune_history_plot",
                name="plot_optimisation_history_node",
            ),
            node(
                plot_parameter_importance,
                "tune_summary",
                "tune_importance_plot",
                name="plot_parameter_importance_node",
            ),
        ]
    )
