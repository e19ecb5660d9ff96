import pytest
import torch

from tests.conftest import base_params
from vans_pipelines.models.placement import CPU, Inference, resolve_device
from vans_pipelines.params import RunParams


class Recorder:
    def __init__(self):
        self.devices = []

    def to(self, device):
        self.devices.append(device)
        return self


def test_auto_is_the_cpu_without_a_gpu_and_an_unusable_device_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("tpu-please")


def test_running_moves_every_model_and_leaves_it_there():
    models = [Recorder(), None, Recorder()]
    with Inference("cpu").running(*models) as inference:
        assert inference.batch_size == 32
    assert models[0].devices == ["cpu"] and models[2].devices == ["cpu"]


def test_bf16_precision_runs_the_block_under_bfloat16_autocast():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with Inference("cpu", "bf16-mixed").running(layer):
        assert layer(x).dtype == torch.bfloat16
    with CPU.running(layer):
        assert layer(x).dtype == torch.float32


def test_bind_evaluates_where_the_placement_says():
    model = Recorder()
    evaluate = Inference("cpu", "bf16-mixed").bind(lambda: torch.ones(1) @ torch.ones(1, 1), model)
    assert model.devices == []  # nothing moves until the evaluation runs
    assert evaluate().dtype == torch.bfloat16 and model.devices == ["cpu"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="precision"):
        Inference("cpu", "fp8")
    with pytest.raises(ValueError, match="batch_size"):
        Inference("cpu", batch_size=0)


def test_the_run_context_carries_the_resolved_placement(tmp_path):
    settings = {"device": "cpu", "precision": "bf16-mixed", "batch_size": 4}
    run = RunParams.model_validate(base_params("run", {"inference": settings}))
    context = run.context("r1", str(tmp_path))
    assert context.inference == Inference("cpu", "bf16-mixed", 4)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"run\.inference\.device: 'cuda:0'"):
            RunParams.model_validate(base_params("run", {"inference": {"device": "cuda:0"}})).context(
                "r1", str(tmp_path)
            )
