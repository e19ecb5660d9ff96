"""Both Joint-GRPO stages on tiny random models: parameters move (only the adapter's), every TensorBoard
tag is written, several iterations per rollout with a KL term run, and a crashed stage resumes."""

import copy
import os

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.training.worlds import CrashAt, captioned_world
from vans_pipelines.models.answer_format import format_answer
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.render import render
from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.samples import TripletSamples, collate
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.grpo import manual_trainer_config
from vans_pipelines.training.grpo_vdm import (
    AnchoredSamples,
    GRPOVDMModule,
    Stage2Settings,
    evaluate_stage2,
    sample_trajectories,
    trajectory_losses,
)
from vans_pipelines.training.grpo_vlm import (
    GRPOVLMModule,
    SamplingConfig,
    Stage1Settings,
    completion_logprobs,
    evaluate_stage1,
)
from vans_pipelines.training.trainer import OptimConfig, RunPaths, TrainerConfig, fit

GEOMETRY = {"context_frames": 4, "target_frames": 4, "height": 16, "width": 16}
VLM_REWARDS = {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 1.0}
VDM_REWARDS = {"video_fidelity": 1.0, "semantic_alignment": 1.0}

# CPU in CI; VANS_TEST_ACCELERATOR=gpu runs these training tests on a GPU (the CUDA path).
TEST_ACCELERATOR = os.environ.get("VANS_TEST_ACCELERATOR", "cpu")
TEST_PRECISION = os.environ.get("VANS_TEST_PRECISION", "32-true")  # e.g. bf16-mixed, the paper recipe's


@pytest.fixture(scope="module")
def world():
    train, val, captions, tokenizer = captioned_world(8, 4, **GEOMETRY)
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(max_frames=4), fps=8.0, seed=0)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    scorer = TinyScorer.build(tokenizer, TinyScorerSpec(frames=4))
    return TripletSamples(train, captions), TripletSamples(val, captions), vlm, vdm, scorer


def trainer(steps, every=1000):
    return manual_trainer_config(
        TrainerConfig(
            accelerator=TEST_ACCELERATOR,
            precision=TEST_PRECISION,
            devices=1,
            max_steps=steps,
            batch_size=2,
            checkpoint_every_n_steps=every,
            log_every_n_steps=1,
        )
    )


def scalar_tags(log_dir):
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    return set(events.Tags()["scalars"]), set(events.Tags()["images"]), events


def stage1(world, grpo=None, lr=1e-2):
    _, _, vlm, vdm, scorer = world
    vlm = copy.deepcopy(vlm)
    vlm.start_adapter(LoraSpec(rank=4))
    settings = Stage1Settings(
        grpo or GRPOConfig(group_size=4),
        VLM_REWARDS,
        OptimConfig(lr=lr),
        log_samples_every=1,
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=12),
        render_steps=2,
    )
    return GRPOVLMModule(vlm, vdm, scorer, settings)


def test_stage1_dr_grpo_divides_by_the_configured_maximum_length(world):
    """TRL's dr_grpo constant is the configured maximum completion length, whatever the batch's longest."""
    assert stage1(world, GRPOConfig(group_size=4, loss_type="dr_grpo")).grpo.max_completion_length == 12
    set_length = GRPOConfig(group_size=4, loss_type="dr_grpo", max_completion_length=40)
    assert stage1(world, set_length).grpo.max_completion_length == 40


def test_a_stage_module_saves_its_whole_settings_object_as_hyperparameters(world):
    """One settings object per stage: the shared loop's settings and the stage's own are the hparams
    (the dr_grpo length as the module uses it); a stage-1 module leaves the VDM's transformer frozen."""
    module = stage1(world, GRPOConfig(group_size=4, loss_type="dr_grpo"))
    hparams = dict(module.hparams)
    assert hparams["render_steps"] == 2 and hparams["sampling"]["max_new_tokens"] == 12
    assert hparams["grpo"]["max_completion_length"] == 12 and hparams["fps"] == 8.0
    assert hparams["weights"] == dict(VLM_REWARDS)
    assert not module.trains_transformer and not hasattr(module, "transformer")


def test_stage1_trains_only_the_adapter_and_logs_every_tag(world, tmp_path):
    train = world[0]
    module = stage1(world)
    before = {n: p.detach().clone() for n, p in module.vlm.model.named_parameters()}
    result = fit(
        module,
        SamplesDataModule(train, 2, 0),
        trainer(3),
        RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "t").training("grpo_vlm", "k"),
    )
    assert result.global_step == 3
    changed = {n for n, p in module.vlm.model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)
    scalars, images, _ = scalar_tags(result.log_dir)
    expected = {
        "reward/format/mean",
        "reward/text_fidelity/std",
        "reward/video_fidelity/mean",
        "reward/total/mean",
        "reward/total/std",
        "advantage/mean",
        "advantage/std",
        "advantage/abs_max",
        "groups/zero_std_fraction",
        "policy/ratio_mean",
        "policy/clip_fraction",
        "train/loss",
        "train/grad_norm",
        "rollout/completion_length",
        "rollout/motion",
    }
    assert expected <= scalars, expected - scalars
    assert any(t.startswith("lr-") for t in scalars)
    assert "samples/videos" in images


def test_stage1_log_probs_of_a_completion_match_a_forward_pass(world):
    _, val, vlm, _, _ = world
    item = val[0]
    answer = format_answer(item["reasoning"], item["caption"])
    batch = vlm.batch([item["context"]], [item["question"]], [answer])
    prompt = vlm.batch([item["context"]], [item["question"]])
    length = prompt["input_ids"].shape[1]
    with torch.no_grad():
        logp = completion_logprobs(vlm, batch, length, temperature=1.0)
        logits = vlm.model(**batch).logits[0, length - 1 : -1]
    ids = batch["input_ids"][0, length:]
    expected = torch.log_softmax(logits, -1)[torch.arange(len(ids)), ids]
    torch.testing.assert_close(logp[0], expected)


def test_stage1_with_iterations_and_kl_uses_old_and_reference_log_probs(world, tmp_path):
    train = world[0]
    module = stage1(world, GRPOConfig(group_size=2, num_iterations=2, beta=0.1, loss_type="dapo"), lr=5e-2)
    result = fit(
        module,
        SamplesDataModule(train, 2, 0),
        trainer(4),
        RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "t").training("grpo_vlm", "k"),
    )
    assert result.global_step == 4  # 2 rollouts x 2 updates
    scalars, _, events = scalar_tags(result.log_dir)
    assert "policy/kl" in scalars
    kls = [e.value for e in events.Scalars("policy/kl")]
    ratios = [e.value for e in events.Scalars("policy/ratio_mean")]
    # Logged per rollout, averaged over its 2 updates: the 1st is on-policy at the reference (ratio 1,
    # KL 0), the 2nd sees the moved policy, so neither average is at its on-policy value.
    assert kls[0] > 0 and all(k >= 0 for k in kls)
    assert ratios[0] != pytest.approx(1.0, abs=1e-7)


def test_a_crashed_stage1_run_resumes(world, tmp_path):
    train = world[0]
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "t")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(
            stage1(world),
            SamplesDataModule(train, 2, 0),
            trainer(5, 2),
            paths.training("grpo_vlm", "k", [CrashAt(3)]),
        )
    result = fit(
        stage1(world), SamplesDataModule(train, 2, 0), trainer(5, 2), paths.training("grpo_vlm", "k")
    )
    assert result.resumed_from_step == 2 and result.global_step == 5


def anchored(samples):
    ids = samples.triplets.index["sample_id"]
    return AnchoredSamples(samples, {s: samples[i]["caption"] for i, s in enumerate(ids)})


def test_stage2_trains_only_the_transformer_adapter_and_logs_motion(world, tmp_path):
    train, _, _, vdm, scorer = world
    vdm = copy.deepcopy(vdm)
    vdm.start_adapter(LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    frozen = {name: copy.deepcopy(m.state_dict()) for name, m in vdm.modules().items()}
    module = GRPOVDMModule(
        vdm,
        scorer,
        Stage2Settings(
            GRPOConfig(group_size=2, num_iterations=2, beta=0.01),
            VDM_REWARDS,
            OptimConfig(lr=1e-2),
            log_samples_every=1,
            sde=SDEConfig(num_steps=3, noise_level=0.7, window_start=1),
        ),
    )
    result = fit(
        module,
        SamplesDataModule(anchored(train), 2, 0),
        trainer(2),
        RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "t").training("grpo_vdm", "k"),
    )
    assert result.global_step == 2
    state = vdm.transformer.state_dict()
    changed = {k for k, v in state.items() if not torch.equal(frozen["transformer"][k], v)}
    assert changed and all("lora_" in k for k in changed)
    for name in ("vae", "text_encoder"):
        after = vdm.modules()[name].state_dict()
        assert all(torch.equal(v, after[k]) for k, v in frozen[name].items())
    scalars, images, _ = scalar_tags(result.log_dir)
    assert {
        "reward/video_fidelity/mean",
        "reward/semantic_alignment/mean",
        "policy/kl",
        "rollout/motion",
        "rollout/motion_ratio",
    } <= scalars
    assert "samples/videos" in images


def test_evaluations_report_totals_spread_and_the_oracle(world):
    _, val, vlm, vdm, scorer = world
    one = evaluate_stage1(vlm, vdm, scorer, val, VLM_REWARDS, render_steps=2, seeds=[0, 1], max_new_tokens=8)
    assert one["samples"] == 4 and set(one["rewards"]) == {*VLM_REWARDS, "caption_event", "oracle_event"}
    assert one["total_seed_std"] > 0 and len(one["total_per_seed"]) == 2
    # the two oracles are measured, not rewarded: the total is the configured rewards' weighted sum
    weighted = sum(w * one["rewards"][n] for n, w in VLM_REWARDS.items())
    assert one["total"] == pytest.approx(weighted, abs=1e-5)
    assert 0.0 <= one["rewards"]["caption_event"] <= 1.0
    two = evaluate_stage2(vdm, scorer, anchored(val), VDM_REWARDS, num_steps=2, seeds=[0])
    assert two["samples"] == 4 and "oracle_event" in two["rewards"] and two["target_motion"] > 0
    assert two["total_seed_std"] == 0.0  # one seed: no spread


def test_stage2_draws_average_more_noise_per_seed(world):
    """With ``draws`` a seed's figure is the mean over anchors and draws; draw 0 is the single-draw
    evaluation itself, and the other draws bring different noise."""
    _, val, _, vdm, scorer = world
    single = evaluate_stage2(vdm, scorer, anchored(val), VDM_REWARDS, num_steps=2, seeds=[0])
    double = evaluate_stage2(vdm, scorer, anchored(val), VDM_REWARDS, num_steps=2, seeds=[0], draws=2)
    assert double["samples"] == single["samples"] == 4 and double["draws"] == 2
    second_draw = 2 * double["total"] - single["total"]
    assert second_draw != pytest.approx(single["total"], abs=1e-6)
    for name, value in single["rewards"].items():
        assert double["rewards"][name] != pytest.approx(value, abs=1e-7) or name == "oracle_event"


def test_a_stage_adapter_is_merged_before_the_next_stage_adds_its_own(world):
    _, val, vlm, _, _ = world
    vlm = copy.deepcopy(vlm)
    vlm.start_adapter(LoraSpec(rank=4))
    with torch.no_grad():
        for name, p in vlm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    item = val[0]
    batch = vlm.batch([item["context"]], [item["question"]])
    with torch.no_grad():
        adapted = vlm.model(**batch).logits
        vlm.start_adapter(LoraSpec(rank=2))  # merges the first adapter, adds a fresh (zero) one
        merged = vlm.model(**batch).logits
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-5)
    lora_shapes = {tuple(p.shape) for n, p in vlm.model.named_parameters() if "lora_A" in n}
    assert all(shape[0] == 2 for shape in lora_shapes)
    assert all(p.requires_grad == ("lora_" in n) for n, p in vlm.model.named_parameters())


def test_before_after_reports_the_paired_change_and_its_spread():
    from vans_pipelines.training.grpo_rewards import before_after

    before = {"total": 0.5, "total_seed_std": 0.1, "total_per_seed": [0.4, 0.5, 0.6]}
    after = {"total": 0.55, "total_seed_std": 0.1, "total_per_seed": [0.44, 0.56, 0.65]}
    report = before_after(before, after)
    assert report["improvement"] == 0.05 and report["seed_spread"] == 0.1
    assert report["improvement_per_seed"] == [0.04, 0.06, 0.05]
    assert report["improvement_seed_std"] == pytest.approx(0.00816, abs=1e-5)


def test_render_shares_the_clip_of_a_caption_repeated_in_its_group(world, monkeypatch):
    """Same context, caption and noise: one render, its clip shared; the result is the full batch's."""
    train, _, _, vdm, _ = world
    batch = collate([train[i] for i in range(2)])
    captions = [
        "the red square falls",
        "the red square falls",
        "paint the blue circle",
        "the red square falls",
    ]
    sizes = []
    sample = vdm.sample
    monkeypatch.setattr(vdm, "sample", lambda c, *a, **k: sizes.append(len(c)) or sample(c, *a, **k))
    clips = render(vdm, captions, batch["context"], frames=4, num_steps=2, seed=5, repeats=2)
    assert sizes == [3]  # (0, red), (1, blue), (1, red)
    assert np.array_equal(clips[0], clips[1]) and not np.array_equal(clips[2], clips[3])
    shape = vdm.latent_shape(4, 16, 16)
    noise = torch.randn((2, *shape), generator=torch.Generator().manual_seed(5)).repeat_interleave(2, dim=0)
    full = sample(captions, np.repeat(batch["context"], 2, axis=0), frames=4, num_steps=2, noise=noise)
    assert np.abs(clips.astype(int) - full.astype(int)).max() <= 1


def test_a_render_cache_renders_each_caption_context_and_seed_once(world, monkeypatch):
    """Runs sharing a cache (same frozen VDM, prompts and seeds) render only what no run rendered yet;
    the first run's clips are those it renders without a cache."""
    train, _, _, vdm, _ = world
    contexts = collate([train[i] for i in range(2)])["context"]
    sizes, sample = [], vdm.sample
    monkeypatch.setattr(vdm, "sample", lambda c, *a, **k: sizes.append(len(c)) or sample(c, *a, **k))
    settings = {"frames": 4, "num_steps": 2, "repeats": 2}
    first = ["the red square falls", "paint the blue circle", "the red square falls", "the red square falls"]
    second = ["the red square falls", "the blue circle falls", "the red square falls", "the red square falls"]
    cache = {}
    alone = render(vdm, first, contexts, seed=5, **settings)
    assert np.array_equal(render(vdm, first, contexts, seed=5, cache=cache, **settings), alone)
    assert len(cache) == 3 and sizes == [3, 3]
    again = render(vdm, second, contexts, seed=5, cache=cache, **settings)
    assert sizes[-1] == 1 and len(cache) == 4  # only (0, "the blue circle falls") was new
    assert np.array_equal(again[[0, 2, 3]], alone[[0, 2, 3]])
    render(vdm, first, contexts, seed=6, cache=cache, **settings)  # another step's noise: all new
    assert sizes[-1] == 3 and len(cache) == 7


def test_a_text_only_stage1_rolls_out_without_rendering(world, monkeypatch):
    module = stage1(world)
    module.weights = {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 0.0}
    monkeypatch.setattr(module.vdm, "sample", lambda *a, **k: pytest.fail("rendered"))
    rollout = module.rollout(collate([world[0][i] for i in range(2)]))
    assert set(rollout.rewards) == {"format", "text_fidelity"} and rollout.videos is None


@pytest.mark.parametrize("iterations", [1, 2])
def test_stage2_with_kept_graphs_trains_the_same_adapter_with_fewer_model_calls(world, tmp_path, iterations):
    """``sde.keep_graphs``: the first update reuses the sampler's graphs of the trained steps; the
    trained adapter is bit-identical to re-running the model on them."""
    train, _, _, vdm, scorer = world
    adapters, calls = [], []
    for keep in (False, True):
        model = copy.deepcopy(vdm)
        model.start_adapter(LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
        velocity = model.velocity
        model.velocity = lambda *a, _v=velocity, _k=keep: calls.append(_k) or _v(*a)
        module = GRPOVDMModule(
            model,
            scorer,
            Stage2Settings(
                GRPOConfig(group_size=2, num_iterations=iterations, beta=0.01),
                VDM_REWARDS,
                OptimConfig(lr=1e-2),
                log_samples_every=0,
                sde=SDEConfig(num_steps=3, noise_level=0.7, window_end=2, keep_graphs=keep),
            ),
        )
        fit(
            module,
            SamplesDataModule(anchored(train), 2, 0),
            trainer(2),
            RunPaths(str(tmp_path / f"tb{keep}"), str(tmp_path / f"ckpt{keep}"), "t").training(
                "grpo_vdm", "k"
            ),
        )
        adapters.append({k: v for k, v in model.transformer.state_dict().items() if "lora_" in k})
    assert adapters[0].keys() == adapters[1].keys() and adapters[0]
    assert all(torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0])
    rollouts = 2 // iterations
    # Per rollout: 3 sampling calls; 2 trained steps x (reference once + policy per update) without
    # keeping the graphs, 2 fewer policy calls with them.
    assert calls.count(False) == rollouts * (3 + 2 + 2 * iterations)
    assert calls.count(True) == calls.count(False) - rollouts * 2


def adapted_copy(vdm):
    """A copy of ``vdm`` with a fresh LoRA adapter on its attention (a stage-2 policy)."""
    vdm = copy.deepcopy(vdm)
    vdm.start_adapter(LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    return vdm


def two_prompt_rollout(vdm, train, sde):
    """One seeded rollout of two groups of two (captions "a" and "b" on the first two train contexts)."""
    return sample_trajectories(
        vdm,
        ["a", "a", "b", "b"],
        np.stack([train[i]["context"] for i in (0, 0, 1, 1)]),
        4,
        sde,
        torch.Generator().manual_seed(0),
    )


def test_a_group_sharing_its_initial_noise_differs_by_the_windows_noise_alone(world):
    train, _, _, vdm, _ = world
    contexts = np.stack([train[i]["context"] for i in (0, 0, 1, 1)])

    def clips(**sde):
        config = SDEConfig(num_steps=3, window_end=1, **sde)
        generator = torch.Generator().manual_seed(0)
        return sample_trajectories(vdm, ["a"] * 4, contexts, 4, config, generator, group_size=2)

    def gap(chains, a, b):  # mean difference of two clips' final latents
        return float((chains.trajectory.final[a] - chains.trajectory.final[b]).abs().mean())

    ode_shared, ode_own = clips(noise_level=0.0, share_initial_noise=True), clips(noise_level=0.0)
    starts = ode_shared.trajectory.latents[:, 0]
    assert torch.equal(starts[0], starts[1]) and torch.equal(starts[2], starts[3])
    assert not torch.equal(starts[1], starts[2])  # one draw per group, not one for all
    torch.testing.assert_close(starts[::2], ode_own.trajectory.latents[::2, 0])  # a group's first draw
    assert gap(ode_shared, 0, 1) < 1e-4 < gap(ode_own, 0, 1)  # same start, no step noise: same clip
    sde_shared = clips(noise_level=0.7, share_initial_noise=True)
    assert gap(sde_shared, 0, 1) > 1e-3  # the window's noise tells them apart
    with pytest.raises(ValueError, match="groups of 2"):
        config = SDEConfig(share_initial_noise=True)
        sample_trajectories(vdm, ["a"] * 3, contexts[:3], 4, config, torch.Generator(), group_size=2)


def test_stage2_reference_means_are_computed_once_per_rollout(world):
    """The reference policy does not train: later updates of the same rollout reuse its step means."""
    train, _, _, vdm, _ = world
    vdm = adapted_copy(vdm)
    sde = SDEConfig(num_steps=3, noise_level=0.7, window_end=2)
    grpo = GRPOConfig(group_size=2, num_iterations=2, beta=0.01)
    sampled = two_prompt_rollout(vdm, train, sde)
    calls = []
    velocity = vdm.velocity
    vdm.velocity = lambda *a: calls.append(1) or velocity(*a)
    advantages, keep = torch.tensor([1.0, -1.0, 0.5, -0.5]), torch.ones(4, dtype=torch.bool)
    first = [float(loss) for loss, _ in trajectory_losses(vdm, sampled, advantages, keep, grpo, sde)]
    assert len(calls) == 2 * 2  # two trained steps: policy and reference each
    second = [float(loss) for loss, _ in trajectory_losses(vdm, sampled, advantages, keep, grpo, sde)]
    assert len(calls) == 2 * 2 + 2  # the policy only
    assert second == first


def test_stage2_wan_policy_scale_weighs_each_steps_policy_term_not_its_kl(world):
    """``sde.policy_scale: sigma_over_sqrt_dt`` (Flow-GRPO's Wan2.1 script): on-policy, each step's loss is
    -mean(advantage) x sigma_t / sqrt|dt| plus the KL term, which keeps its weight."""
    train, _, _, vdm, _ = world
    vdm = adapted_copy(vdm)
    with torch.no_grad():  # a moved adapter, so the KL to the reference is not 0
        for name, parameter in vdm.transformer.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    advantages, keep = torch.tensor([1.0, -0.5, 0.75, 0.25]), torch.ones(4, dtype=torch.bool)
    losses = {}
    for scale in ("none", "sigma_over_sqrt_dt"):
        sde = SDEConfig(num_steps=3, noise_level=0.7, window_end=2, policy_scale=scale)
        sampled = two_prompt_rollout(vdm, train, sde)
        grpo = GRPOConfig(group_size=2, beta=0.01)
        losses[scale] = [
            (float(loss), stats.kl_mean)
            for loss, stats in trajectory_losses(vdm, sampled, advantages, keep, grpo, sde)
        ]
    sigmas = vdm.sigmas(3)
    cap = float(sigmas[1])
    for k, ((plain, kl), (weighted, kl_weighted)) in enumerate(zip(*losses.values(), strict=True)):
        t, t_next = float(sigmas[k]), float(sigmas[k + 1])
        weight = 0.7 * np.sqrt(t / (1 - min(t, cap))) / np.sqrt(t - t_next)
        assert kl == pytest.approx(kl_weighted) and kl > 0
        policy = -float(advantages.mean()) / 2  # ratio 1: -mean advantage, over the 2 trained steps
        assert plain == pytest.approx(policy + 0.01 * kl / 2, rel=1e-4)
        assert weighted == pytest.approx(weight * policy + 0.01 * kl / 2, rel=1e-4)


def adapter_gradients(vdm, sampled, advantages, keep, grpo, sde, micro_batch_size):
    """The adapter's gradients after back-propagating every step's loss (in micro-batches if given)."""
    vdm.transformer.zero_grad(set_to_none=True)
    total = 0.0
    for loss, _ in trajectory_losses(vdm, sampled, advantages, keep, grpo, sde, micro_batch_size):
        loss.backward()
        total += float(loss)
    named = vdm.transformer.named_parameters()
    return total, {n: p.grad.clone() for n, p in named if p.requires_grad and p.grad is not None}


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_stage2_micro_batches_give_the_whole_batchs_loss_and_gradients(world, loss_type):
    """Back-propagating a step's group in micro-batches (``grpo_vdm.micro_batch_size``) adds up to the same
    loss and adapter gradients as the whole group at once, with a KL term, stored old log-probs and a
    sample left out of the loss."""
    train, _, _, vdm, _ = world
    vdm = adapted_copy(vdm)
    with torch.no_grad():  # a moved adapter: the ratio and the KL are not trivial
        for name, parameter in vdm.transformer.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05, generator=torch.Generator().manual_seed(2))
    sde = SDEConfig(num_steps=3, noise_level=0.7, window_end=2)
    grpo = GRPOConfig(group_size=2, num_iterations=2, beta=0.01, loss_type=loss_type)
    sampled = two_prompt_rollout(vdm, train, sde)
    advantages, keep = torch.tensor([1.0, -0.5, 0.75, 0.25]), torch.tensor([1.0, 1.0, 0.0, 1.0])
    whole_loss, whole = adapter_gradients(vdm, sampled, advantages, keep, grpo, sde, None)
    assert whole and any(float(g.abs().max()) > 0 for g in whole.values())
    for size in (1, 3):
        loss, pieces = adapter_gradients(vdm, sampled, advantages, keep, grpo, sde, size)
        assert loss == pytest.approx(whole_loss, rel=1e-5, abs=1e-8)
        assert pieces.keys() == whole.keys()
        for name, grad in whole.items():
            torch.testing.assert_close(pieces[name], grad, rtol=1e-4, atol=1e-7)


def test_stage2_micro_batches_refuse_kept_graphs(world):
    train, _, _, vdm, _ = world
    vdm = adapted_copy(vdm)
    sde = SDEConfig(num_steps=3, noise_level=0.7, window_end=2, keep_graphs=True)
    sampled = two_prompt_rollout(vdm, train, sde)
    losses = trajectory_losses(
        vdm, sampled, torch.zeros(4), torch.ones(4), GRPOConfig(group_size=2), sde, micro_batch_size=2
    )
    with pytest.raises(ValueError, match="keep_graphs"):
        next(losses)
