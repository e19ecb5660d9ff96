"""GRPO on the cascade as one unit: both adapters train from one reward, nothing else moves, the on-policy
ratio is exactly 1, and the loss is the two stages' losses summed."""

import copy

import pytest
import torch

from tests.training.test_grpo import GEOMETRY, scalar_tags, trainer
from tests.training.worlds import captioned_world
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig, group_advantages
from vans_pipelines.samples import TripletSamples, collate
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.grpo_cascade import CascadeSettings, GRPOCascadeModule
from vans_pipelines.training.grpo_vdm import trajectory_losses
from vans_pipelines.training.grpo_vlm import SamplingConfig, token_policy_loss
from vans_pipelines.training.trainer import OptimConfig, RunPaths, fit

REWARDS = {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 1.0, "semantic_alignment": 1.0}
VDM_LORA = LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0"))


@pytest.fixture(scope="module")
def world():
    train, val, captions, tokenizer = captioned_world(8, 4, **GEOMETRY)
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(max_frames=4), fps=8.0, seed=0)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    scorer = TinyScorer.build(tokenizer, TinyScorerSpec(frames=4))
    return TripletSamples(train, captions), TripletSamples(val, captions), vlm, vdm, scorer


def cascade(world, grpo=None, grpo_vdm=None):
    _, _, vlm, vdm, scorer = world
    vlm, vdm = copy.deepcopy(vlm), copy.deepcopy(vdm)
    vlm.start_adapter(LoraSpec(rank=4))
    vdm.start_adapter(VDM_LORA)
    settings = CascadeSettings(
        grpo or GRPOConfig(group_size=2),
        REWARDS,
        OptimConfig(lr=1e-2),
        log_samples_every=1,
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=12),
        grpo_vdm=grpo_vdm or GRPOConfig(group_size=8, beta=0.01),
        optim_vdm=OptimConfig(lr=5e-3),
        sde=SDEConfig(num_steps=3, noise_level=0.7, window_end=2),
    )
    return GRPOCascadeModule(vlm, vdm, scorer, settings)


def test_one_loop_trains_both_adapters_and_nothing_else(world, tmp_path):
    module = cascade(world)
    vlm_before = {n: p.detach().clone() for n, p in module.vlm.model.named_parameters()}
    vdm_before = {name: copy.deepcopy(m.state_dict()) for name, m in module.vdm.modules().items()}
    result = fit(
        module,
        SamplesDataModule(world[0], 2, 0),
        trainer(2),
        RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "t").training("cascade", "k"),
    )
    assert result.global_step == 2
    changed = {n for n, p in module.vlm.model.named_parameters() if not torch.equal(vlm_before[n], p)}
    assert changed and all("lora_" in n for n in changed) and any("lora_B" in n for n in changed)
    state = module.vdm.transformer.state_dict()
    changed = {k for k, v in state.items() if not torch.equal(vdm_before["transformer"][k], v)}
    assert changed and all("lora_" in k for k in changed) and any("lora_B" in k for k in changed)
    for name in ("vae", "text_encoder"):
        after = module.vdm.modules()[name].state_dict()
        assert all(torch.equal(v, after[k]) for k, v in vdm_before[name].items())
    scalars, images, events = scalar_tags(result.log_dir)
    assert {
        "reward/semantic_alignment/mean",
        "reward/text_fidelity/mean",
        "policy/kl",
        "rollout/motion",
    } <= scalars
    # One rollout per update: every update is on-policy, so the probability ratio is exactly 1.
    assert all(e.value == pytest.approx(1.0, abs=1e-6) for e in events.Scalars("policy/ratio_mean"))
    assert "samples/videos" in images


def test_each_side_keeps_its_stage_learning_rate_and_the_loops_group(world):
    module = cascade(world, GRPOConfig(group_size=2, num_iterations=2))
    assert module.grpo_vdm.group_size == 2 and module.grpo_vdm.num_iterations == 2
    assert module.grpo_vdm.beta == 0.01  # the VDM side's own KL weight

    class Trainer:
        max_steps = 4

    module.trainer = Trainer()  # what configure_optimizers reads
    optimizer = module.configure_optimizers()["optimizer"]
    lrs = [group["lr"] for group in optimizer.param_groups]
    counts = [sum(p.numel() for p in group["params"]) for group in optimizer.param_groups]
    vlm_lora = sum(p.numel() for p in module.vlm.model.parameters() if p.requires_grad)
    vdm_lora = sum(p.numel() for p in module.vdm.transformer.parameters() if p.requires_grad)
    assert lrs == [1e-2, 5e-3] and counts == [vlm_lora, vdm_lora]


def test_the_loss_is_the_caption_loss_plus_the_video_steps_losses(world, monkeypatch):
    module = cascade(world)
    monkeypatch.setattr(module, "manual_backward", lambda loss: loss.backward())
    batch = collate([world[0][i] for i in range(2)])
    torch.manual_seed(0)
    rollout = module.rollout(batch)
    adv = group_advantages(rollout.rewards, module.weights, module.grpo)
    mask = torch.ones(len(adv.advantages), dtype=torch.bool)
    total, stats = module.update(rollout, adv.advantages, mask, 0)
    with torch.no_grad():
        text, _ = token_policy_loss(
            module.vlm, rollout.completions, adv.advantages, mask, module.grpo, module.sampling
        )
        steps = trajectory_losses(
            module.vdm, rollout.trajectories, adv.advantages, mask, module.grpo_vdm, module.sde
        )
        expected = float(text) + sum(float(loss) for loss, _ in steps)
    assert total == pytest.approx(expected, rel=1e-5)
    assert stats.ratio_mean == pytest.approx(1.0, abs=1e-6) and stats.kl_mean is not None
    assert len(rollout.rewards["semantic_alignment"]) == 2 * 2  # group x prompts
