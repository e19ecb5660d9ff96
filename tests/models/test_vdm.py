import copy
import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.vdm import (
    Conditioning,
    VideoDiffusionModel,
    to_model_video,
    to_uint8_video,
)
from vans_pipelines.models.wan_vae import vae_factors


def videos(n=2, frames=8, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, frames, 32, 32, 3), dtype=np.uint8)


def test_uint8_video_round_trip():
    clip = videos()
    np.testing.assert_array_equal(to_uint8_video(to_model_video(clip)), clip)


def test_prepare_encodes_a_repeated_caption_or_context_once_with_the_same_result(tokenizer):
    """A GRPO group repeats its prompt: encoding each distinct one once gives what encoding all did."""
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=3))
    context = videos(n=3)[[0, 1, 0, 2, 1]]
    captions = ["the red circle", "the blue square", "the red circle", "the red circle", "the blue square"]
    encoded = []
    vdm.encode_text = lambda texts, _f=vdm.encode_text: encoded.append(len(texts)) or _f(texts)
    with torch.no_grad():
        noise, text, cond = vdm.prepare(captions, context, 8, 32, 32, torch.Generator().manual_seed(0))
        assert encoded == [2]
        assert torch.equal(text, VideoDiffusionModel.encode_text(vdm, captions))
        assert torch.equal(cond, vdm.encode_context(context, noise.shape[2]))


def test_context_condition_holds_the_last_frames_and_a_mask(tokenizer):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=3))
    context = videos(frames=8)
    cond = vdm.encode_context(context, latent_frames=8)
    z = vdm.vae.config.z_dim
    assert vae_factors(vdm.vae) == (2, 1)  # 2x2 pixel blocks folded into channels, no downsampling
    assert cond.shape == (2, z + 1, 8, 16, 16)
    assert (cond[:, z, :3] == 1).all() and (cond[:, :, 3:] == 0).all()
    last = vdm.encode(to_model_video(context[:, -1:]))
    torch.testing.assert_close(cond[:, :z, 2:3], last)


def test_repeated_last_frame_fills_every_slot_in_channels_of_its_own(tokenizer):
    conditioning = Conditioning(context_frames=3, repeat_last_frame=True)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), conditioning)
    z = vdm.vae.config.z_dim
    assert vdm.transformer.config.in_channels == z + conditioning.condition_channels(z) == 3 * z + 1
    context = videos(frames=8)
    cond = vdm.encode_context(context, latent_frames=8)
    last = vdm.encode(to_model_video(context[:, -1:]))
    torch.testing.assert_close(cond[:, :z, 2:3], last)
    assert (cond[:, z, :3] == 1).all() and (cond[:, : z + 1, 3:] == 0).all()
    torch.testing.assert_close(cond[:, z + 1 :], last.expand(-1, -1, 8, -1, -1))
    clips = vdm.sample(["the red circle falls."] * 2, context, frames=8, num_steps=2)
    assert clips.shape == (2, 8, 32, 32, 3)


def test_normalised_latents_have_unit_statistics_and_decode_the_same(tokenizer):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    frames = videos(n=1, frames=16)[0]
    before = vdm.decode(vdm.encode(to_model_video(frames[None])))
    vdm.normalise_latents(frames)
    z = vdm.encode(to_model_video(frames[:, None]))
    torch.testing.assert_close(z.mean(dim=(0, 2, 3, 4)), torch.zeros(z.shape[1]), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3, 4)), torch.ones(z.shape[1]), atol=1e-3, rtol=0)
    after = vdm.decode(vdm.encode(to_model_video(frames[None])))
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)


def test_flow_matching_loss_trains_the_transformer(tokenizer):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    before = {k: v.clone() for k, v in vdm.transformer.state_dict().items()}
    opt = torch.optim.AdamW(vdm.transformer.parameters(), lr=1e-3)
    loss = vdm.flow_matching_loss(videos(frames=4), videos(frames=4, seed=1), ["the red circle falls."] * 2)
    loss.backward()
    opt.step()
    assert loss.isfinite()
    assert any(not torch.equal(before[k], v) for k, v in vdm.transformer.state_dict().items())


def test_save_and_load_give_identical_samples_with_and_without_lora(tokenizer, tmp_path):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    context, captions = videos(frames=4), ["the red circle falls."] * 2
    vdm.save_pretrained(tmp_path / "full")
    loaded = VideoDiffusionModel.from_pretrained(tmp_path / "full")
    expected = vdm.sample(captions, context, frames=4, num_steps=3)
    np.testing.assert_array_equal(loaded.sample(captions, context, frames=4, num_steps=3), expected)

    loaded.add_lora(LoraSpec(rank=2, alpha=4, target_modules=("to_q", "to_v")))
    for name, param in loaded.transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    adapted = loaded.sample(captions, context, frames=4, num_steps=3)
    loaded.save_pretrained(tmp_path / "lora")
    again = VideoDiffusionModel.from_pretrained(tmp_path / "lora")
    np.testing.assert_array_equal(again.sample(captions, context, frames=4, num_steps=3), adapted)
    assert not np.array_equal(adapted, expected)


def folder_bytes(folder):
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_a_save_references_the_unchanged_parts_it_was_loaded_with(tokenizer, tmp_path):
    """A stage that trains only the transformer's adapter saves the adapter and references (path and
    signature) to the VAE, the text encoder and the transformer base it loaded, not copies of them; a
    part whose weights changed is written; a referenced part that changed afterwards is refused."""
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    vdm.save_pretrained(tmp_path / "sft_vdm")
    loaded = VideoDiffusionModel.from_pretrained(tmp_path / "sft_vdm")
    loaded.add_lora(LoraSpec(rank=2, alpha=4, target_modules=("to_q", "to_v")))
    for name, param in loaded.transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    context, captions = videos(frames=4), ["the red circle falls."] * 2
    expected = loaded.sample(captions, context, frames=4, num_steps=3)
    loaded.save_pretrained(tmp_path / "grpo_vdm")

    saved = tmp_path / "grpo_vdm"
    assert sorted(p.name for p in saved.iterdir()) == ["tokenizer", "transformer_adapter", "vans_vdm.json"]
    meta = json.loads((saved / "vans_vdm.json").read_text())
    assert meta["transformer_base"] == "../sft_vdm"
    assert {part: ref["path"] for part, ref in meta["parts"].items()} == {
        "vae": "../sft_vdm",
        "text_encoder": "../sft_vdm",
    }
    assert folder_bytes(saved) < folder_bytes(tmp_path / "sft_vdm") / 4
    again = VideoDiffusionModel.from_pretrained(saved)
    np.testing.assert_array_equal(again.sample(captions, context, frames=4, num_steps=3), expected)

    # the project moved: relative references still resolve
    shutil.copytree(tmp_path, tmp_path.parent / "moved")
    moved = VideoDiffusionModel.from_pretrained(tmp_path.parent / "moved" / "grpo_vdm")
    np.testing.assert_array_equal(moved.sample(captions, context, frames=4, num_steps=3), expected)

    # a part trained after loading is written again
    with torch.no_grad():
        next(again.text_encoder.parameters()).add_(0.1)
    again.save_pretrained(tmp_path / "tuned")
    assert (tmp_path / "tuned" / "text_encoder").is_dir() and not (tmp_path / "tuned" / "vae").exists()

    # the referenced folder changed under the save: loading it names the part and the folder
    changed = VideoDiffusionModel.from_pretrained(tmp_path / "sft_vdm")
    with torch.no_grad():
        next(changed.vae.parameters()).mul_(2)
    changed.vae.save_pretrained(tmp_path / "sft_vdm" / "vae")
    with pytest.raises(ValueError, match=r"its vae is the one in .*sft_vdm"):
        VideoDiffusionModel.from_pretrained(saved)


def test_text_to_video_checkpoints_get_zero_initialised_context_channels(tokenizer, tmp_path):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    z = vdm.vae.config.z_dim
    t2v = type(vdm.transformer)(**{**vdm.transformer.config, "in_channels": z})
    vdm.transformer = t2v
    vdm.save_pretrained(tmp_path / "t2v")
    loaded = VideoDiffusionModel.from_pretrained(tmp_path / "t2v")
    assert loaded.transformer.config.in_channels == 2 * z + 1
    assert (loaded.transformer.patch_embedding.weight[:, z:] == 0).all()


def test_context_latents_keep_one_latent_per_frame_when_the_vae_compresses_time(tokenizer):
    """The cached context latents (SFT) and the sampling condition come from one encoder: each context
    frame alone, even through a VAE that folds 4 frames into one latent (Wan2.1)."""
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=3))
    vdm.vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=8,
        dim_mult=[1, 2],
        num_res_blocks=1,
        temperal_downsample=[True],
        latents_mean=[0.0] * 8,
        latents_std=[1.0] * 8,
    )
    assert vae_factors(vdm.vae) == (2, 2)
    context = videos(frames=5)
    latents = vdm.encode_context_latents(context)
    assert latents.shape == (2, 8, 3, 16, 16)
    cond = vdm.encode_context(context, latent_frames=4)
    torch.testing.assert_close(cond, vdm.context_condition(latents, 4))


def test_compiled_model_matches_eager_in_copies_and_after_an_adapter_is_added(tokenizer):
    """compile changes float rounding only: velocities, LoRA gradients and decoded clips equal eager ones
    to float tolerance, also in a deep copy (which compiles its own parts) given an adapter later; the
    saved weights' names do not change."""
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    keys = set(vdm.vae.state_dict())
    with torch.no_grad():
        noise, text, cond = vdm.prepare(
            ["the red circle falls."] * 2, videos(frames=4), 4, 32, 32, torch.Generator().manual_seed(0)
        )
        decoded = vdm.decode(noise)
    sigma = torch.tensor(0.7)
    eager = vdm.velocity(noise, sigma, text, cond)
    vdm.compile()
    torch.testing.assert_close(vdm.velocity(noise, sigma, text, cond), eager, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(vdm.decode(noise), decoded, rtol=1e-4, atol=1e-5)
    assert set(vdm.vae.state_dict()) == keys  # the compiled decoder is only swapped in for the call

    copied = copy.deepcopy(vdm)
    original = vdm._compiled.get("transformer", vdm.transformer)
    assert copied._compiled.get("transformer", copied.transformer) is not original
    copied.add_lora(LoraSpec(rank=2, alpha=4, target_modules=("to_q", "to_v")))
    for name, param in copied.transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)

    def velocity_and_grads(model):
        out = model.velocity(noise, sigma, text, cond)
        out.square().mean().backward()
        grads = {n: p.grad.clone() for n, p in model.transformer.named_parameters() if p.requires_grad}
        model.transformer.zero_grad()
        return out.detach(), grads

    compiled_out, compiled_grads = velocity_and_grads(copied)
    copied.compile(False)
    eager_out, eager_grads = velocity_and_grads(copied)
    assert not torch.allclose(eager_out, eager)  # the adapter is in the compiled graph
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-4, atol=1e-5)
    assert eager_grads.keys() == compiled_grads.keys() and eager_grads
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-3, atol=1e-5)


def test_guidance_extrapolates_from_the_empty_caption_and_scale_one_is_the_transformer_alone(tokenizer):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2, guidance_scale=3.0))
    x = torch.randn(2, 8, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.3, 0.8])
    cond = vdm.context_condition(torch.randn(2, 8, 2, 16, 16), 4)
    with torch.no_grad():
        text = vdm.encode_text(["the red circle falls.", "the blue square bounces."])
        conditional = vdm.velocity(x, sigma, text, cond, guidance=1.0)
        unconditional = vdm.velocity(x, sigma, vdm.encode_text(["", ""]), cond, guidance=1.0)
        guided = vdm.velocity(x, sigma, text, cond)  # the model's guidance_scale, 3
        assert torch.allclose(guided, unconditional + 3.0 * (conditional - unconditional), atol=1e-5)
        assert not torch.allclose(guided, conditional)


def test_prefix_context_slots_run_the_context_before_the_answer_and_return_the_answers_velocity(tokenizer):
    conditioning = Conditioning(context_frames=3, repeat_last_frame=True, context_slots="prefix")
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), conditioning)
    latents = torch.randn(2, 8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    cond = vdm.context_condition(latents, 4)
    assert cond.shape == (2, 17, 3 + 4, 16, 16)
    assert torch.equal(cond[:, :8, :3], latents) and torch.equal(
        cond[:, :8, 3:], torch.zeros(2, 8, 4, 16, 16)
    )
    assert torch.equal(
        cond[:, 8], torch.tensor([1.0, 1, 1, 0, 0, 0, 0]).view(1, 7, 1, 1).expand(2, 7, 16, 16)
    )
    assert torch.equal(cond[:, 9:], latents[:, :, -1:].expand(2, 8, 7, 16, 16))
    x = torch.randn(2, 8, 4, 16, 16)
    with torch.no_grad():
        text = vdm.encode_text(["the red circle falls."] * 2)
        v = vdm.velocity(x, torch.tensor([0.5, 0.5]), text, cond)
        whole = torch.cat([torch.nn.functional.pad(x, (0, 0, 0, 0, 3, 0)), cond], dim=1)
        direct = vdm.transformer(whole, torch.tensor([500.0, 500.0]), text, return_dict=False)[0]
        assert v.shape == x.shape and torch.equal(v, direct[:, :, 3:])
        clips = vdm.sample(["the red circle falls."], videos(n=1, frames=8), frames=4, num_steps=2)
    assert clips.shape == (1, 4, 32, 32, 3)
