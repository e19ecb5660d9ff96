import optuna
import pytest

from tests.conftest import base_params
from vans_pipelines.params import TuneSearchSpace
from vans_pipelines.training.tune import (
    ReportToTrial,
    merge,
    open_study,
    params_from_trial,
    run_trials,
    suggest,
    summarise_study,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study(tmp_path, name="s"):
    return open_study(
        f"sqlite:///{tmp_path / 'study.db'}", name, seed=0, pruner_startup_trials=0, pruner_warmup_steps=0
    )


def test_suggestions_cover_the_space_and_replay_from_a_finished_trial(tmp_path):
    space = TuneSearchSpace.model_validate(base_params("tune")["search"])
    s = study(tmp_path)
    s.optimize(lambda t: sum(suggest(t, space)["rewards"].values()), n_trials=3)
    for trial in s.trials:
        overrides = params_from_trial(trial, space)
        assert set(overrides["rewards"]) == {"format", "text_fidelity", "video_fidelity"}
        assert all(0 <= w <= 2.0 for w in overrides["rewards"].values())
        assert 1e-4 <= overrides["optim"]["lr"] <= 2e-3 and overrides["grpo"]["group_size"] in (4, 8)
        assert sum(overrides["rewards"].values()) == pytest.approx(trial.value)


def test_merge_replaces_rewards_whole_and_merges_other_sections():
    base = {"rewards": {"format": 0.2, "text_fidelity": 1.0}, "optim": {"lr": 1.0, "schedule": "constant"}}
    out = merge(base, {"rewards": {"video_fidelity": 1.0}, "optim": {"lr": 2.0}})
    assert out == {"rewards": {"video_fidelity": 1.0}, "optim": {"lr": 2.0, "schedule": "constant"}}
    assert base["optim"]["lr"] == 1.0


def test_an_interrupted_study_resumes_to_its_target_count(tmp_path):
    space = TuneSearchSpace.model_validate(
        {**base_params("tune")["search"], "lr": None, "group_size": None, "beta": None}
    )

    def objective(trial):
        return suggest(trial, space)["rewards"]["text_fidelity"]

    assert run_trials(study(tmp_path), 2, objective) == 2
    resumed = study(tmp_path)  # a new process: the same SQLite file
    assert run_trials(resumed, 5, objective) == 3
    assert run_trials(study(tmp_path), 5, objective) == 0
    summary = summarise_study(study(tmp_path), space)
    assert summary["complete"] == 5 and summary["best"]["value"] == max(t["value"] for t in summary["trials"])
    assert set(summary["importances"]) == {"weight_format", "weight_text_fidelity", "weight_video_fidelity"}


class _Trainer:
    def __init__(self, step, max_steps=10):
        self.global_step, self.max_steps = step, max_steps


def test_report_to_trial_prunes_a_run_below_the_median(tmp_path):
    s = study(tmp_path)
    for value in (1.0, 1.0):
        trial = s.ask()
        trial.report(value, 2)
        s.tell(trial, value)
    trial = s.ask()
    callback = ReportToTrial(trial, lambda: 0.1, every=2)
    callback.on_train_batch_end(_Trainer(1), None, None, None, 0)  # not a reporting step
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {}
    with pytest.raises(optuna.TrialPruned, match="pruned at step 2"):
        callback.on_train_batch_end(_Trainer(2), None, None, None, 0)
