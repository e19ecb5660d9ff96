"""Adapters are saved in PEFT's own format: ``PeftModel.from_pretrained`` loads both stages' adapters
(the VLM's and the VDM transformer's) and computes what our models compute."""

import json

import numpy as np
import torch
from diffusers import WanTransformer3DModel
from peft import PeftModel
from transformers import Qwen2_5_VLForConditionalGeneration

from vans_pipelines.models.lora import LoraSpec, load_lora, save_lora
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning, VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel


def moved(module: torch.nn.Module, seed: int) -> None:
    """Give the adapter non-zero B matrices, so it changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_vlm_adapter_loads_in_peft_with_identical_logits(tokenizer, tmp_path):
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), seed=0, fps=8.0)
    vlm.add_lora(LoraSpec(rank=4, target_modules=("q_proj", "v_proj", "qkv")))
    moved(vlm.model, 1)
    vlm.model.eval()
    vlm.save_pretrained(tmp_path / "grpo_vlm")

    config = json.loads((tmp_path / "grpo_vlm" / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tmp_path / "grpo_vlm" / "base"))
    peft_model = PeftModel.from_pretrained(base, str(tmp_path / "grpo_vlm" / "adapter")).eval()
    ours = VisionLanguageModel.from_pretrained(tmp_path / "grpo_vlm")
    ours.model.eval()

    ids = torch.randint(3, len(tokenizer), (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = vlm.model(input_ids=ids).logits
        torch.testing.assert_close(peft_model(input_ids=ids).logits, expected)
        torch.testing.assert_close(ours.model(input_ids=ids).logits, expected)
        with peft_model.disable_adapter():
            assert not torch.allclose(peft_model(input_ids=ids).logits, expected)


def test_vdm_adapter_loads_in_peft_with_identical_velocity(tokenizer, tmp_path):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    vdm.add_lora(LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    moved(vdm.transformer, 3)
    for module in vdm.modules().values():
        module.eval()
    vdm.save_pretrained(tmp_path / "grpo_vdm")

    base = WanTransformer3DModel.from_pretrained(str(tmp_path / "grpo_vdm"), subfolder="transformer")
    peft_transformer = PeftModel.from_pretrained(
        base, str(tmp_path / "grpo_vdm" / "transformer_adapter")
    ).eval()
    ours = VideoDiffusionModel.from_pretrained(tmp_path / "grpo_vdm")
    ours.transformer.eval()

    context = np.random.default_rng(0).integers(0, 255, (2, 4, 16, 16, 3), dtype=np.uint8)
    noise, text, cond = vdm.prepare(
        ["the red circle bounces"] * 2, context, 4, 16, 16, torch.Generator().manual_seed(4)
    )
    hidden = torch.cat([noise, cond], dim=1)
    timestep = torch.full((2,), 600.0)
    with torch.no_grad():
        expected = vdm.transformer(hidden, timestep, text, return_dict=False)[0]
        torch.testing.assert_close(peft_transformer(hidden, timestep, text, return_dict=False)[0], expected)
        torch.testing.assert_close(ours.transformer(hidden, timestep, text, return_dict=False)[0], expected)


def test_adapters_of_the_earlier_layout_still_load(tmp_path):
    """Folders saved before the PEFT layout: our LoraSpec as adapter_config.json, unprefixed weight keys."""
    from safetensors.torch import load_file, save_file

    layer = torch.nn.Sequential(torch.nn.Linear(4, 4))
    spec = LoraSpec(rank=2, target_modules=("0",))
    from vans_pipelines.models.lora import add_lora

    add_lora(layer, spec)
    moved(layer, 5)
    save_lora(layer, tmp_path / "new", spec)
    old = tmp_path / "old"
    old.mkdir()
    weights = load_file(str(tmp_path / "new" / "adapter_model.safetensors"))
    save_file(
        {k.removeprefix("base_model.model."): v for k, v in weights.items()},
        str(old / "adapter_model.safetensors"),
    )
    (old / "adapter_config.json").write_text(
        json.dumps({"rank": 2, "alpha": 32.0, "dropout": 0.0, "target_modules": ["0"]})
    )
    x = torch.randn(3, 4)
    for folder in ("new", "old"):
        fresh = torch.nn.Sequential(torch.nn.Linear(4, 4))
        fresh.load_state_dict({"0.weight": layer[0].base_layer.weight, "0.bias": layer[0].base_layer.bias})
        assert load_lora(fresh, tmp_path / folder) == spec
        torch.testing.assert_close(fresh(x), layer(x))
