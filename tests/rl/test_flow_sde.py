"""The Flow-GRPO SDE sampler against its formulas, torch.distributions, and the ODE sampler it generalises."""

import numpy as np
import pytest
import torch

from vans_pipelines.models.lora import LoraSpec, adapters_disabled
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.models.wan_vae import to_uint8_video
from vans_pipelines.rl.flow_sde import (
    SDEConfig,
    gaussian_kl,
    policy_weight,
    sample_sde,
    sde_step,
    sigma_cap,
    step_kl,
)


def test_step_follows_the_flow_grpo_formulas():
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(3, 2, 4, generator=g), torch.randn(3, 2, 4, generator=g)
    t, t_next, a = 0.6, 0.45, 0.7
    dt = t_next - t
    sigma_t = a * np.sqrt(t / (1 - t))
    mean = x + v * dt + (sigma_t**2 / (2 * t)) * (x + (1 - t) * v) * dt
    std = sigma_t * np.sqrt(-dt)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    step = sde_step(x, v, t, t_next, a, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(step.mean, mean)
    torch.testing.assert_close(step.sample, mean + std * eps)
    assert step.std.flatten().tolist() == pytest.approx([std] * 3)


def test_log_prob_matches_torch_distributions_normal():
    g = torch.Generator().manual_seed(1)
    x, v = torch.randn(4, 3, 5, generator=g, dtype=torch.float64), torch.randn(4, 3, 5, generator=g)
    nxt = torch.randn(4, 3, 5, generator=g)
    sigma = torch.tensor([0.9, 0.7, 0.5, 0.3])  # a different noise level per sample
    step = sde_step(x, v, sigma, sigma - 0.1, 0.8, next_latents=nxt)
    normal = torch.distributions.Normal(step.mean, step.std.expand_as(step.mean))
    expected = normal.log_prob(nxt.float()).flatten(1).mean(1)
    torch.testing.assert_close(step.log_prob, expected)
    assert step.log_prob.dtype == torch.float32 and step.sample.dtype == torch.float64


def test_the_first_step_caps_only_the_denominator_as_flow_grpo():
    """Flow-GRPO: sigma_t = a sqrt(t / (1 - where(t == 1, t_1, t))), so at t = 1 the numerator stays 1."""
    x = torch.zeros(1, 4)
    with pytest.raises(ValueError, match="sigma_cap"):
        sde_step(x, x, 1.0, 0.9, 0.7)
    step = sde_step(x, x, 1.0, 0.9, 0.7, sigma_cap=0.9)
    sigma_t = 0.7 * np.sqrt(1.0 / (1 - 0.9))
    assert float(step.sigma_t) == pytest.approx(sigma_t)
    assert float(step.std) == pytest.approx(sigma_t * np.sqrt(0.1))
    # below t = 1 the cap plays no part
    later = sde_step(x, x, 0.8, 0.6, 0.7, sigma_cap=0.9)
    assert float(later.sigma_t) == pytest.approx(0.7 * np.sqrt(0.8 / 0.2))


def test_step_kl_forms_match_their_hand_formulas():
    g = torch.Generator().manual_seed(4)
    x, v, v_ref = (torch.randn(3, 2, 5, generator=g) for _ in range(3))
    t, t_next, a = 0.7, 0.5, 0.8
    policy = sde_step(x, v, t, t_next, a, generator=g)
    ref = sde_step(x, v_ref, t, t_next, a, generator=g)
    sigma_t = a * np.sqrt(t / (1 - t))
    squared = ((policy.mean - ref.mean) ** 2).flatten(1).mean(1)
    flow_grpo = squared / (2 * sigma_t**2)  # Flow-GRPO's train_sd3.py
    exact = squared / (2 * sigma_t**2 * (t - t_next))  # KL(N(mean, std^2) || N(ref, std^2)); train_wan2_1.py
    torch.testing.assert_close(step_kl(policy, ref.mean, "flow_grpo"), flow_grpo)
    torch.testing.assert_close(step_kl(policy, ref.mean, "exact"), exact)
    torch.testing.assert_close(step_kl(policy, ref.mean), flow_grpo)  # the default
    torch.testing.assert_close(step_kl(policy, ref.mean, "exact") * (t - t_next), flow_grpo)
    with pytest.raises(ValueError, match="kl_form"):
        step_kl(policy, ref.mean, "k3")


def test_bf16_latents_log_prob_is_that_of_the_stored_sample():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 4, 8, 8, generator=g).bfloat16()
    v = torch.randn(2, 4, 8, 8, generator=g).bfloat16()
    step = sde_step(x, v, 0.6, 0.5, 0.7, generator=g)
    assert step.sample.dtype == torch.bfloat16
    rescored = sde_step(x, v, 0.6, 0.5, 0.7, next_latents=step.sample)
    torch.testing.assert_close(rescored.log_prob, step.log_prob, rtol=0, atol=0)


def test_noise_level_zero_is_the_euler_step_and_has_no_log_prob():
    x, v = torch.randn(2, 6), torch.randn(2, 6)
    step = sde_step(x, v, 0.8, 0.5, 0.0)
    torch.testing.assert_close(step.sample, x + v * (0.5 - 0.8))
    assert step.log_prob is None


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mean, ref, std = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g), torch.full((2, 1), 0.3)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std.expand_as(mean)),
        torch.distributions.Normal(ref, std.expand_as(ref)),
    ).mean(1)
    torch.testing.assert_close(gaussian_kl(mean, ref, std), expected)
    assert torch.equal(gaussian_kl(mean, mean, std), torch.zeros(2))


def test_sde_config_windows_and_errors():
    assert list(SDEConfig(num_steps=6, window_start=1, window_end=4).sde_steps) == [1, 2, 3]
    with pytest.raises(ValueError, match="window_start: "):
        SDEConfig(num_steps=4, window_start=3, window_end=2)
    with pytest.raises(ValueError, match="noise_level: "):
        SDEConfig(noise_level=-1)
    assert SDEConfig().kl_form == "flow_grpo" and SDEConfig().policy_scale == "none"
    with pytest.raises(ValueError, match="kl_form: "):
        SDEConfig(kl_form="k3")
    with pytest.raises(ValueError, match="policy_scale: "):
        SDEConfig(policy_scale="wan")


def test_the_wan_policy_weight_is_sigma_t_over_sqrt_dt():
    """Flow-GRPO's train_wan2_1.py: policy_loss * std_dev_t / sqrt(-dt) (its step returns sqrt(-dt) as dt)."""
    x, v = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    step = sde_step(x, v, 0.9, 0.7, 0.7, generator=torch.Generator().manual_seed(0))
    sigma_t = 0.7 * np.sqrt(0.9 / 0.1)
    assert policy_weight(step, "sigma_over_sqrt_dt") == pytest.approx(sigma_t / np.sqrt(0.2), rel=1e-5)
    assert policy_weight(step) == 1.0
    with pytest.raises(ValueError, match="policy_scale"):
        policy_weight(step, "wan")


@pytest.fixture(scope="module")
def vdm():
    from vans_pipelines.models.tokenizer import build_word_tokenizer

    tokenizer = build_word_tokenizer(["the red circle bounces left", "the blue square falls"])
    model = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    for module in model.modules().values():
        module.eval()
    return model


def context_clips(n=2, frames=4, size=16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, frames, size, size, 3), dtype=np.uint8)


def test_sde_sampler_at_noise_zero_reproduces_the_ode_sampler(vdm):
    """Our SDE chain with a = 0 against ``vdm.sample`` (diffusers' FlowMatchEulerDiscreteScheduler)."""
    captions, contexts = ["the red circle bounces left", "the blue square falls"], context_clips()
    frames, steps = 4, 6
    ode = vdm.sample(captions, contexts, frames=frames, num_steps=steps, seed=7)
    noise, text, cond = vdm.prepare(captions, contexts, frames, 16, 16, torch.Generator().manual_seed(7))
    with torch.no_grad():
        trajectory = sample_sde(
            lambda x, s: vdm.velocity(x, s, text, cond), noise, vdm.sigmas(steps), SDEConfig(steps, 0.0)
        )
        sde = to_uint8_video(vdm.decode(trajectory.final))
    assert np.array_equal(sde, ode)
    assert trajectory.latents.shape[1] == steps + 1


def test_sde_sampler_log_probs_are_those_of_its_own_steps(vdm):
    captions, contexts = ["the red circle bounces left"] * 2, context_clips()
    noise, text, cond = vdm.prepare(captions, contexts, 4, 16, 16, torch.Generator().manual_seed(1))
    sigmas, config = vdm.sigmas(5), SDEConfig(num_steps=5, noise_level=0.7, window_start=1, window_end=4)
    with torch.no_grad():
        tr = sample_sde(
            lambda x, s: vdm.velocity(x, s, text, cond),
            noise,
            sigmas,
            config,
            generator=torch.Generator().manual_seed(2),
        )
        assert tr.steps == (1, 2, 3) and tr.log_probs.shape == (2, 3)
        for k, i in enumerate(tr.steps):
            x = tr.latents[:, i]
            v = vdm.velocity(x, sigmas[i].expand(2), text, cond)
            again = sde_step(
                x,
                v,
                sigmas[i],
                sigmas[i + 1],
                0.7,
                sigma_cap=sigma_cap(sigmas),
                next_latents=tr.latents[:, i + 1],
            )
            torch.testing.assert_close(again.log_prob, tr.log_probs[:, k])
        # steps outside the window are plain Euler steps
        x0 = tr.latents[:, 0]
        euler = x0 + vdm.velocity(x0, sigmas[0].expand(2), text, cond) * (sigmas[1] - sigmas[0])
        torch.testing.assert_close(tr.latents[:, 1], euler)


def test_kept_graphs_change_nothing_and_score_the_steps_as_an_update_would(vdm):
    """``keep_graphs``: the same chain and log-probs; each stochastic step's kept log-prob carries the
    model's gradient and equals re-scoring the recorded step (what a training update computes)."""
    captions, contexts = ["the red circle bounces left"] * 2, context_clips()
    noise, text, cond = vdm.prepare(captions, contexts, 4, 16, 16, torch.Generator().manual_seed(1))
    sigmas = vdm.sigmas(5)

    def run(keep):
        config = SDEConfig(num_steps=5, noise_level=0.7, window_start=1, window_end=3, keep_graphs=keep)
        with torch.no_grad():  # as a rollout samples: the kept steps enable gradients themselves
            return sample_sde(
                lambda x, s: vdm.velocity(x, s, text, cond),
                noise,
                sigmas,
                config,
                generator=torch.Generator().manual_seed(2),
            )

    plain, kept = run(False), run(True)
    assert torch.equal(plain.latents, kept.latents) and torch.equal(plain.log_probs, kept.log_probs)
    assert plain.graphs == {} and sorted(kept.graphs) == [1, 2]
    assert not kept.latents.requires_grad and not kept.log_probs.requires_grad
    weight = next(p for p in vdm.transformer.parameters())
    for k, i in enumerate(kept.steps):
        step = kept.graphs[i]
        assert step.log_prob.requires_grad
        assert torch.equal(step.log_prob.detach(), kept.log_probs[:, k])
        x = kept.latents[:, i]
        again = sde_step(
            x,
            vdm.velocity(x, sigmas[i].expand(2), text, cond),
            sigmas[i],
            sigmas[i + 1],
            0.7,
            sigma_cap=sigma_cap(sigmas),
            next_latents=kept.latents[:, i + 1],
        )
        (ours,) = torch.autograd.grad(step.log_prob.sum(), weight)
        (theirs,) = torch.autograd.grad(again.log_prob.sum(), weight)
        assert torch.equal(ours, theirs)


def test_gaussian_kl_is_zero_with_a_zero_adapter(vdm):
    import copy

    model = copy.deepcopy(vdm)
    model.add_lora(LoraSpec(rank=4, target_modules=("to_q", "to_v")))
    captions, contexts = ["the blue square falls"] * 2, context_clips()
    noise, text, cond = model.prepare(captions, contexts, 4, 16, 16, torch.Generator().manual_seed(3))
    sigma = torch.tensor(0.6)
    with torch.no_grad():
        policy = sde_step(noise, model.velocity(noise, sigma.expand(2), text, cond), sigma, 0.4, 0.7)
        with adapters_disabled(model.transformer):
            ref = sde_step(noise, model.velocity(noise, sigma.expand(2), text, cond), sigma, 0.4, 0.7)
        assert torch.equal(gaussian_kl(policy.mean, ref.mean, policy.std), torch.zeros(2))
        for name, p in model.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
        moved = sde_step(noise, model.velocity(noise, sigma.expand(2), text, cond), sigma, 0.4, 0.7)
    assert (gaussian_kl(moved.mean, ref.mean, moved.std) > 0).all()
