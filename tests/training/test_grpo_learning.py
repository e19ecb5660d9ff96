"""Learning is real, on a small fixed-seed run of each stage: the val mean total reward after GRPO beats the
SFT model's by more than the seed-to-seed spread (the same check the stage reports carry)."""

import pytest

from tests.training.worlds import captioned_world
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
from vans_pipelines.models.vdm import Conditioning, TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.vlm import TinyVLMSpec, build_tiny_vlm
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.training.data import FrameSamples, SamplesDataModule, TripletSamples, collate_frames
from vans_pipelines.training.grpo import manual_trainer_config
from vans_pipelines.training.grpo_vdm import AnchoredSamples, GRPOVDMModule, evaluate_stage2
from vans_pipelines.training.grpo_vlm import GRPOVLMModule, SamplingConfig, evaluate_stage1
from vans_pipelines.training.scorer import ScorerModule
from vans_pipelines.training.trainer import OptimConfig, RunPaths, TrainerConfig, fit
from vans_pipelines.training.vdm_sft import VAEFitModule, VDMSFTModule
from vans_pipelines.training.vlm_sft import VLMSFTModule

GEOMETRY = {"context_frames": 8, "target_frames": 8, "height": 32, "width": 32}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def world():
    train, val, captions, tokenizer = captioned_world(64, 24, **GEOMETRY)
    return train, TripletSamples(train, captions), TripletSamples(val, captions), tokenizer


def config(steps, batch):
    return TrainerConfig(
        accelerator="cpu", devices=1, max_steps=steps, batch_size=batch, checkpoint_every_n_steps=10_000
    )


def paths(tmp_path):
    return RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "t")


@pytest.fixture(scope="module")
def sft_models(world, tmp_path_factory):
    """A briefly supervised VLM and VDM and a trained scorer, as caption and SFT leave them (smaller)."""
    train_set, train, _, tokenizer = world
    tmp = tmp_path_factory.mktemp("sft")
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(max_frames=8), fps=8.0, seed=0)
    fit(
        VLMSFTModule(vlm, OptimConfig(lr=2e-3, warmup_steps=10), log_samples=0),
        SamplesDataModule(train, None, 16, 0),
        config(150, 16),
        paths(tmp),
        "sft_vlm",
        "k",
    )
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=4), seed=0)
    fit(
        VAEFitModule(vdm, OptimConfig(lr=2e-3, warmup_steps=5)),
        SamplesDataModule(FrameSamples(train_set), None, 32, 0, collate_fn=collate_frames),
        config(60, 32),
        paths(tmp),
        "sft_vae",
        "k",
    )
    fit(
        VDMSFTModule(vdm, OptimConfig(lr=1e-3, warmup_steps=10), train_text_encoder=True, log_samples=0),
        SamplesDataModule(train, None, 16, 0),
        config(120, 16),
        paths(tmp),
        "sft_vdm",
        "k",
    )
    scorer = TinyScorer.build(tokenizer, TinyScorerSpec())
    fit(
        ScorerModule(scorer, OptimConfig(lr=2e-3, warmup_steps=10)),
        SamplesDataModule(train, None, 32, 0),
        config(100, 32),
        paths(tmp),
        "scorer",
        "k",
    )
    vlm.model.eval()
    scorer.encoder.eval()
    for module in vdm.modules().values():
        module.eval()
    return vlm, vdm, scorer


def beats_the_spread(before, after):
    return after["total"] - before["total"] > max(before["total_seed_std"], after["total_seed_std"])


@pytest.mark.slow
def test_stage1_raises_the_val_reward_beyond_the_seed_spread(world, sft_models, tmp_path):
    _, train, val, _ = world
    vlm, vdm, scorer = sft_models
    weights = {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 1.0}
    evaluation = {"render_steps": 3, "seeds": SEEDS, "max_new_tokens": 40}
    before = evaluate_stage1(vlm, vdm, scorer, val, weights, **evaluation)
    vlm.start_adapter(LoraSpec(target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "qkv", "proj")))
    module = GRPOVLMModule(
        vlm,
        vdm,
        scorer,
        GRPOConfig(group_size=8, scale_rewards="none"),
        weights,
        OptimConfig(lr=5e-4, schedule="constant"),
        SamplingConfig(temperature=0.7, max_new_tokens=40),
        render_steps=3,
        log_samples_every=0,
    )
    fit(
        module,
        SamplesDataModule(train, None, 4, 0),
        manual_trainer_config(config(40, 4)),
        paths(tmp_path),
        "g",
        "k",
    )
    vlm.model.eval()
    after = evaluate_stage1(vlm, vdm, scorer, val, weights, **evaluation)
    assert beats_the_spread(before, after), (before["total_per_seed"], after["total_per_seed"])


@pytest.mark.slow
def test_stage2_raises_the_val_reward_beyond_the_seed_spread(world, sft_models, tmp_path):
    _, train, val, _ = world
    _, vdm, scorer = sft_models

    def anchored(samples):  # ground-truth captions as anchors (a perfect stage-1 VLM)
        ids = samples.triplets.index["sample_id"]
        return AnchoredSamples(samples, {s: samples[i]["caption"] for i, s in enumerate(ids)})

    weights = {"video_fidelity": 1.0, "semantic_alignment": 1.0}
    before = evaluate_stage2(vdm, scorer, anchored(val), weights, num_steps=6, seeds=SEEDS)
    vdm.start_adapter(LoraSpec(target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    module = GRPOVDMModule(
        vdm,
        scorer,
        GRPOConfig(group_size=8, scale_rewards="none"),
        weights,
        OptimConfig(lr=3e-4, schedule="constant"),
        SDEConfig(num_steps=6, noise_level=0.7, window_end=3),
        log_samples_every=0,
    )
    data = SamplesDataModule(anchored(train), None, 4, 0)
    fit(module, data, manual_trainer_config(config(30, 4)), paths(tmp_path), "g", "k")
    for part in vdm.modules().values():
        part.eval()
    after = evaluate_stage2(vdm, scorer, anchored(val), weights, num_steps=6, seeds=SEEDS)
    assert beats_the_spread(before, after), (before["total_per_seed"], after["total_per_seed"])
