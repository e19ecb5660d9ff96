"""Optuna over the Joint-GRPO stage-1 reward weights and the few hyperparameters that matter (learning
rate, group size, KL beta). Each trial is a short stage-1 run from the SFT VLM, scored on the val split by
a *fixed* objective (changing the reward weights must not change the yardstick), with intermediate scores
reported for median pruning. The study lives in an RDB storage (SQLite by default), so an interrupted study
resumes and several workers can share one."""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import optuna
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Dataset

from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params.base import merge
from vans_pipelines.training.grpo_vlm import evaluate_stage1, fit_stage1
from vans_pipelines.training.trainer import RunPaths

if TYPE_CHECKING:
    from vans_pipelines.params import GRPOVLMParams, TuneParams, TuneSearchSpace

log = logging.getLogger(__name__)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def open_study(
    storage: optuna.storages.BaseStorage | str,
    name: str,
    *,
    seed: int,
    pruner_startup_trials: int,
    pruner_warmup_steps: int,
) -> optuna.Study:
    """Create or load (resume) the study: TPE sampler, median pruner, maximising the objective. Trials a
    dead worker left RUNNING are marked FAILED once their heartbeat is stale, so they are re-done."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=pruner_startup_trials, n_warmup_steps=pruner_warmup_steps
        ),
    )
    optuna.storages.fail_stale_trials(study)
    return study


def suggest(trial: optuna.Trial, space: TuneSearchSpace) -> dict[str, Any]:
    """Overrides of the ``grpo_vlm`` section for one trial, as a nested dict."""
    rewards = {name: trial.suggest_float(f"weight_{name}", 0.0, space.weight_max) for name in space.rewards}
    if not any(w > 0 for w in rewards.values()):
        rewards[space.rewards[0]] = space.weight_max  # at least one reward must count
    overrides: dict[str, Any] = {"rewards": rewards}
    if space.lr is not None:
        overrides["optim"] = {"lr": trial.suggest_float("lr", *space.lr, log=True)}
    grpo: dict[str, Any] = {}
    if space.group_size:
        grpo["group_size"] = trial.suggest_categorical("group_size", list(space.group_size))
    if space.beta is not None:
        grpo["beta"] = trial.suggest_float("beta", *space.beta)
    if grpo:
        overrides["grpo"] = grpo
    return overrides


def params_from_trial(trial: optuna.trial.FrozenTrial, space: TuneSearchSpace) -> dict[str, Any]:
    """The overrides a finished trial used (replayed from its stored parameters)."""
    return suggest(optuna.trial.FixedTrial(trial.params), space)


class ReportToTrial(Callback):
    """Every ``every`` optimizer steps: score the model, ``trial.report`` it, and stop the run when the
    pruner says so (raises :class:`optuna.TrialPruned` out of ``Trainer.fit``)."""

    def __init__(self, trial: optuna.Trial, score: Callable[[], float], every: int):
        self.trial, self.score, self.every = trial, score, every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every or step >= trainer.max_steps:
            return
        value = self.score()
        self.trial.report(value, step)
        log.info("tune: trial %d step %d objective %.4f", self.trial.number, step, value)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"trial {self.trial.number} pruned at step {step} ({value:.4f})")


def run_trials(study: optuna.Study, n_trials: int, objective: Callable[[optuna.Trial], float]) -> int:
    """Run trials until the study holds ``n_trials`` finished (complete or pruned) ones, counting those of
    earlier (interrupted) runs and of other workers. Returns how many trials this call ran."""
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = max(0, n_trials - done)
    if remaining:
        study.optimize(
            objective,
            n_trials=remaining,
            callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)],
            catch=(),
        )
    return remaining


def stage1_objective(
    sft_vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    train: Dataset,
    val: Dataset,
    base: Mapping[str, Any],
    parse: Callable[[dict[str, Any]], GRPOVLMParams],
    tune: TuneParams,
    paths: RunPaths,
    *,
    fps: float,
) -> Callable[[optuna.Trial], float]:
    """The objective of one trial: the ``grpo_vlm`` section ``base`` with the trial's suggestions (checked
    by ``parse``, which returns the typed section) and ``tune.steps`` steps, trained from a copy of the SFT
    VLM; scored by the fixed ``tune.objective`` reward mix on ``tune.val_limit`` val samples."""

    def score(vlm: VisionLanguageModel, params: GRPOVLMParams) -> float:
        return validation_score(vlm, vdm, scorer, val, params, tune)

    def objective(trial: optuna.Trial) -> float:
        overrides = merge(
            suggest(trial, tune.search),
            {
                "trainer": {"max_steps": tune.steps, "checkpoint_every_n_steps": tune.steps},
                "log_samples_every": 0,
            },
        )
        params = parse(merge(base, overrides))
        vlm = copy.deepcopy(sft_vlm)  # every trial starts from the SFT weights
        report = ReportToTrial(trial, lambda: score(vlm, params), tune.report_every)
        with tempfile.TemporaryDirectory(prefix="vans-tune-") as checkpoints:
            trial_paths = replace(paths, checkpoint_dir=checkpoints)
            run = trial_paths.training(f"tune/trial_{trial.number:03d}", "trial", [report])
            fit_stage1(vlm, vdm, scorer, params, train, run, fps=fps)
        value = score(vlm, params)
        trial.report(value, tune.steps)
        log.info("tune: trial %d finished, objective %.4f, params %s", trial.number, value, trial.params)
        return value

    return objective


def validation_score(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    val: Dataset,
    params: GRPOVLMParams,
    tune: TuneParams,
) -> float:
    """A trial's yardstick: the fixed ``tune.objective`` reward mix of the VLM's greedy answers on the
    first ``tune.val_limit`` val samples (the model's train / eval mode is restored after)."""
    was_training = vlm.model.training
    vlm.model.eval()
    result = evaluate_stage1(
        vlm,
        vdm,
        scorer,
        val,
        tune.objective,
        render_steps=params.render_steps,
        seeds=tune.val_seeds,
        max_new_tokens=params.eval.max_new_tokens,
        limit=tune.val_limit,
    )
    vlm.model.train(was_training)
    return float(result["total"])


def summarise_study(study: optuna.Study, space: TuneSearchSpace) -> dict[str, Any]:
    """Best trial, its overrides, every trial's state / value / params, and parameter importances."""
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    summary: dict[str, Any] = {
        "study_name": study.study_name,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
            }
            for t in sorted(finished, key=lambda t: t.number)
        ],
        "complete": len(complete),
        "pruned": len(finished) - len(complete),
    }
    if complete:
        best = study.best_trial
        summary["best"] = {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "overrides": params_from_trial(best, space),
        }
    if len(complete) >= 2:
        summary["importances"] = dict(optuna.importance.get_param_importances(study))
    return summary


def best_overrides(summary: Mapping[str, Any]) -> dict[str, Any]:
    if "best" not in summary:
        raise ValueError("tune: no trial completed, so there are no best weights to write")
    return summary["best"]["overrides"]
