"""Activation checkpointing changes memory, not numbers: the adapter's gradients are those without it."""

import lightning as L
import numpy as np
import pytest
import torch

from vans_pipelines.models.checkpointing import enable_activation_checkpointing
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.training.trainer import OptimConfig, RunPaths, TrainerConfig, fit
from vans_pipelines.training.vdm_sft import VDMSFTModule
from vans_pipelines.training.vlm_sft import VLMSFTModule


def trained_gradients(model: torch.nn.Module, loss_of) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad(set_to_none=True)
    loss_of().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(before, after):
    assert before and before.keys() == after.keys()
    for name, grad in before.items():
        torch.testing.assert_close(after[name], grad, rtol=1e-5, atol=1e-7)


def test_vlm_checkpointing_keeps_the_adapters_gradients(tokenizer):
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(max_frames=4), seed=0, fps=8.0)
    vlm.add_lora(LoraSpec(rank=4, target_modules=("q_proj", "v_proj")))
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8) for _ in range(2)]
    batch = vlm.batch(videos, ["What will happen next?"] * 2, ["red circle bounce left"] * 2)

    def loss():
        return vlm.model(**batch).loss

    plain = trained_gradients(vlm.model, loss)
    module = VLMSFTModule(vlm, OptimConfig())
    assert enable_activation_checkpointing(module) == ["model"]
    assert any(getattr(m, "gradient_checkpointing", False) for m in vlm.model.modules())
    assert_same_gradients(plain, trained_gradients(vlm.model, loss))


def test_vdm_checkpointing_keeps_the_transformers_gradients(tokenizer):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    rng = np.random.default_rng(0)
    target = rng.integers(0, 255, (2, 4, 16, 16, 3), dtype=np.uint8)
    context = rng.integers(0, 255, (2, 4, 16, 16, 3), dtype=np.uint8)

    def loss():
        return vdm.flow_matching_loss(
            target, context, ["red circle", "blue square"], torch.Generator().manual_seed(0)
        )

    plain = trained_gradients(vdm.transformer, loss)
    module = VDMSFTModule(vdm, OptimConfig(), train_text_encoder=False)
    assert set(enable_activation_checkpointing(module)) == {"transformer", "text_encoder"}
    assert vdm.transformer.gradient_checkpointing
    assert_same_gradients(plain, trained_gradients(vdm.transformer, loss))


def test_a_model_without_checkpointing_is_left_alone():
    assert enable_activation_checkpointing(torch.nn.Sequential(torch.nn.Linear(2, 2))) == []


class Plain(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)


def test_fit_refuses_checkpointing_where_no_model_supports_it(tmp_path):
    run = RunPaths(str(tmp_path / "logs"), str(tmp_path / "ckpt"), "run").training("plain", "k")
    with pytest.raises(ValueError, match="activation_checkpointing"):
        fit(Plain(), None, TrainerConfig(activation_checkpointing=True), run)
