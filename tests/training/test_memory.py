"""Peak-memory estimates on fake tensors (training/memory.py): they account the same tensors a real run
makes, attention is held as the fused kernels hold it, the models' data-dependent bookkeeping runs, and a
real run's allocator peak agrees where kernels keep no workspace of their own."""

import contextlib

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.training.memory import ShapeOnlyMode, estimate_peak, fake_weights, measure_peak


def lora_step(transformer: torch.nn.Module, mode) -> tuple:
    """A LoRA training step of ``transformer`` (fwd, bwd, AdamW) and what it starts with."""
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    with mode:
        hidden = torch.randn(2, transformer.config.in_channels, 2, 8, 8)
        text = torch.randn(2, 6, transformer.config.text_dim)

    def step():
        out = transformer(hidden, torch.tensor([500.0, 200.0]), text, return_dict=False)[0]
        out.float().pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, [transformer, optimizer, hidden, text]


def tiny_transformer(tokenizer, device: str):
    with torch.device(device):
        vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    vdm.transformer.requires_grad_(False)
    vdm.add_lora(LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    return vdm.transformer


def test_fake_weights_account_the_same_tensors_as_a_real_run(tokenizer):
    real = tiny_transformer(tokenizer, "cpu")
    expected = estimate_peak(*lora_step(real, contextlib.nullcontext()), contextlib.nullcontext())
    mode = ShapeOnlyMode()
    fake = tiny_transformer(tokenizer, "meta")
    fake_weights(fake, mode)
    assert all(isinstance(p, FakeTensor) for p in fake.parameters())
    assert [p.requires_grad for p in fake.parameters()] == [p.requires_grad for p in real.parameters()]
    estimated = estimate_peak(*lora_step(fake, mode), mode)
    assert estimated.total > 0 and estimated.activations > 0 and estimated.parameters > 0
    assert estimated == expected


class Attention(torch.nn.Module):
    def __init__(self, dim: int = 64, heads: int = 4):
        super().__init__()
        self.heads, self.qkv = heads, torch.nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)


def attention_activations(length: int) -> int:
    mode = ShapeOnlyMode()
    with torch.device("meta"):
        model = Attention()
    fake_weights(model, mode)
    with mode:
        x = torch.randn(1, length, 64, requires_grad=True)

    def step():
        model(x).sum().backward()

    peak = estimate_peak(step, [model, x], mode)
    return peak.activations + peak.temporaries


def test_attention_is_held_as_the_fused_kernels_hold_it_not_as_a_score_matrix():
    """Doubling the sequence doubles attention's memory (a length² score matrix would quadruple it:
    at 4096 tokens and 4 heads it alone is 268 MB)."""
    short, long = attention_activations(2048), attention_activations(4096)
    assert 1.9 < long / short < 2.2
    assert long < 4 * 4096**2  # far below one head's score matrix in fp32


def test_the_vlms_data_dependent_bookkeeping_runs_on_real_token_ids(tokenizer):
    """Qwen2.5-VL's rope index and vision windows read token ids and grid sizes: those stay real, the
    logits are fake; a number read from a fake value reads 0 and is counted."""
    mode = ShapeOnlyMode()
    with torch.device("meta"):
        vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(max_frames=4), seed=0, fps=8.0)
    fake_weights(vlm.model, mode)
    videos = [np.zeros((4, 16, 16, 3), dtype=np.uint8)] * 2
    batch = vlm.batch(videos, ["What will happen next?"] * 2, ["red circle bounce left"] * 2)
    with mode:
        out = vlm.model(**batch)
        assert isinstance(out.logits, FakeTensor)
        assert out.logits.shape[:2] == batch["input_ids"].shape
        assert float(out.loss) == 0.0
    assert mode.scalar_reads == 1


def test_a_real_steps_allocator_peak_matches_the_estimate():
    """A plain MLP step (no kernel workspace): the allocator's real peak is within 15 % of the estimate."""

    def build(device):
        with torch.device(device):
            return torch.nn.Sequential(
                torch.nn.Linear(512, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 512)
            )

    def step_of(model, mode):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        with mode:
            x = torch.randn(256, 512)

        def step():
            model(x).pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step, [model, optimizer, x]

    real = measure_peak(*step_of(build("cpu"), contextlib.nullcontext()))
    mode = ShapeOnlyMode()
    model = build("meta")
    fake_weights(model, mode)
    estimated = estimate_peak(*step_of(model, mode), mode).total
    assert abs(estimated / real - 1) < 0.15, (estimated, real)
