"""training/trainer.py: the EMA of the weights that a fit leaves in the model."""

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.trainer import (
    EMAConfig,
    OptimConfig,
    RunPaths,
    TrainerConfig,
    fit,
    make_optimizer,
)


class Regression(TrainingModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(3, 1)
        self.optim = OptimConfig(lr=0.1, schedule="constant")

    def training_step(self, batch, batch_idx):
        x = torch.stack([torch.as_tensor(item, dtype=torch.float32) for item in batch])
        return (self.layer(x).squeeze(-1) - x.sum(-1)).pow(2).mean()


class Trajectory(Callback):
    """The weights after every optimiser step (runs before the averaging callback)."""

    def __init__(self):
        self.weights: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, module, *args):
        self.weights.append(module.layer.weight.detach().clone())


def run(tmp_path, ema: EMAConfig, steps: int = 6):
    module, trajectory = Regression(), Trajectory()
    data = [torch.randn(3, generator=torch.Generator().manual_seed(i)) for i in range(32)]
    config = TrainerConfig(
        accelerator="cpu", devices=1, max_steps=steps, batch_size=4, gradient_clip_val=None
    )
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test")
    training = paths.training("ema", f"k{ema.decay}", callbacks=(trajectory, *ema.callbacks()))
    fit(module, SamplesDataModule(data, 4, 0, collate_fn=list), config, training)
    return module.layer.weight.detach(), trajectory.weights


def test_the_model_ends_with_the_exponential_average_of_its_weights_from_the_start_step(tmp_path):
    final, weights = run(tmp_path, EMAConfig(decay=0.5, start_step=2))
    expected = weights[2]  # the first update from step 2 on copies the weights
    for w in weights[3:]:
        expected = 0.5 * expected + 0.5 * w
    assert torch.allclose(final, expected, atol=1e-6)
    assert not torch.allclose(final, weights[-1])


def test_without_decay_the_model_keeps_its_last_weights(tmp_path):
    final, weights = run(tmp_path, EMAConfig())
    assert EMAConfig().callbacks() == ()
    assert torch.equal(final, weights[-1])


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_a_decay_outside_the_unit_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay: must be in"):
        EMAConfig(decay=decay)


def test_the_optimiser_takes_its_epsilon_from_the_settings():
    """AdamW's epsilon is a setting: with gradients far below torch's default 1e-8 (stage 2's, for rewards
    whose in-group differences are small) the update is the learning rate only when epsilon is smaller."""
    steps = {}
    for eps in (1e-8, 1e-16):
        weight = torch.nn.Parameter(torch.zeros(4))
        settings = OptimConfig(lr=0.1, schedule="constant", eps=eps)
        optimizer = make_optimizer([weight], settings, 10)["optimizer"]
        assert optimizer.defaults["eps"] == eps
        weight.grad = torch.full((4,), 1e-10)
        optimizer.step()
        steps[eps] = float(weight.detach().abs().max())
    assert steps[1e-16] == pytest.approx(0.1, rel=1e-3)
    assert steps[1e-8] < 0.02
    with pytest.raises(ValueError, match="eps"):
        OptimConfig(eps=0.0)
