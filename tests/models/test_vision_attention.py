import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AttentionInterface, Qwen2_5_VLForConditionalGeneration

from vans_pipelines.models.tiny import TinyVLMSpec, build_tiny_vlm
from vans_pipelines.models.vision_attention import (
    PACKED_VISION_ATTENTION,
    packed_varlen_sdpa,
    portable_config,
    use_packed_vision_attention,
)


def per_segment_attention(q, k, v, lengths, scale):
    """The reference: one SDPA call per segment, as transformers' SDPA path computes it."""
    parts = [
        F.scaled_dot_product_attention(qs, ks, vs, scale=scale)
        for qs, ks, vs in zip(q.split(lengths, 2), k.split(lengths, 2), v.split(lengths, 2), strict=True)
    ]
    return torch.cat(parts, dim=2).transpose(1, 2)


@pytest.mark.parametrize("lengths", [[4, 4, 4], [4, 2, 5, 1]], ids=["equal", "unequal"])
def test_packed_attention_equals_one_call_per_segment(lengths):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, sum(lengths), 8, generator=gen) for _ in range(3))
    cu = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32)
    out, weights = packed_varlen_sdpa(None, q, k, v, cu_seq_lens_q=cu, scaling=0.3)
    assert weights is None
    torch.testing.assert_close(out, per_segment_attention(q, k, v, lengths, 0.3))
    # No token attends outside its segment: changing the last segment leaves the others as they were.
    k2, v2 = k.clone(), v.clone()
    k2[:, :, -lengths[-1] :] = torch.randn(1, 2, lengths[-1], 8, generator=gen)
    v2[:, :, -lengths[-1] :] = torch.randn(1, 2, lengths[-1], 8, generator=gen)
    out2, _ = packed_varlen_sdpa(None, q, k2, v2, cu_seq_lens_q=cu, scaling=0.3)
    torch.testing.assert_close(out2[:, : -lengths[-1]], out[:, : -lengths[-1]])
    assert not torch.allclose(out2[:, -lengths[-1] :], out[:, -lengths[-1] :])


def test_packed_attention_refuses_a_mask():
    q = torch.zeros(1, 1, 4, 2)
    with pytest.raises(ValueError, match="segment boundaries"):
        packed_varlen_sdpa(None, q, q, q, torch.ones(1, 1, 4, 4), cu_seq_lens_q=torch.tensor([0, 4]))


@pytest.mark.parametrize("size", [32, 48], ids=["equal-windows", "edge-windows"])
def test_a_tiny_vlm_computes_the_same_loss_and_gradients_with_packed_vision_attention(tokenizer, size):
    """48-pixel frames leave narrower windows at the edges (unequal segments); 32 gives equal ones."""
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    assert vlm.model.config.vision_config._attn_implementation == PACKED_VISION_ATTENTION
    assert vlm.model.config.text_config._attn_implementation == "sdpa"
    reference = copy.deepcopy(vlm.model)
    reference.set_attn_implementation({"vision_config": "sdpa"})
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 255, (8, size, size, 3), dtype=np.uint8) for _ in range(3)]
    batch = vlm.batch(videos, ["What will happen next?"] * 3, ["the red circle bounces"] * 3)
    grads = []
    for model in (vlm.model.train(), reference.train()):
        loss = model(**batch).loss
        loss.backward()
        grads.append((loss.detach(), model.model.visual.blocks[0].attn.qkv.weight.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_a_chosen_attention_kernel_is_kept_and_the_saved_config_names_none(tokenizer, tmp_path):
    AttentionInterface.register("my_flash_kernel", packed_varlen_sdpa)
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    vlm.model.set_attn_implementation({"vision_config": "my_flash_kernel"})
    use_packed_vision_attention(vlm.model)
    assert vlm.model.config.vision_config._attn_implementation == "my_flash_kernel"
    # A plain transformers user loads the saved model without this project's registration.
    vlm.model.save_pretrained(tmp_path)
    assert "flash" not in (tmp_path / "config.json").read_text()
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.vision_config._attn_implementation == "sdpa"


def test_a_model_builds_from_the_portable_config_of_a_packed_one(tokenizer):
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    rebuilt = Qwen2_5_VLForConditionalGeneration(portable_config(vlm.model.config))
    assert rebuilt.config.vision_config._attn_implementation == "sdpa"
    assert vlm.model.config.vision_config._attn_implementation == PACKED_VISION_ATTENTION
