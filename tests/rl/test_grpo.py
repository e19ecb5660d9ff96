"""GRPO machinery against its math on small tensors, and against TRL's loss formula on a tiny causal LM."""

import math

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from vans_pipelines.models.lora import LoraSpec, adapters_disabled, add_lora
from vans_pipelines.rl.grpo import (
    GRPOConfig,
    clipped_policy_loss,
    group_advantages,
    k3_kl,
    normalise_in_groups,
    sample_mask,
)


def test_advantages_match_a_hand_computation():
    rewards = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])}
    adv = group_advantages(rewards, {"a": 1.0}, GRPOConfig(group_size=4))
    std = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)  # unbiased, as torch.std and TRL
    expected = [(r - 2.5) / (std + 1e-4) for r in (1, 2, 3, 4)] + [0.0] * 4
    assert adv.advantages.tolist() == pytest.approx(expected, abs=1e-6)
    assert adv.zero_std.tolist() == [False] * 4 + [True] * 4
    assert adv.zero_std_group_fraction == 0.5
    assert (
        sample_mask(adv, GRPOConfig(group_size=4, mask_zero_std_groups=True)).tolist()
        == [1.0] * 4 + [0.0] * 4
    )
    assert sample_mask(adv, GRPOConfig(group_size=4)).tolist() == [1.0] * 8  # TRL keeps every sample


def test_batch_and_no_scaling():
    r = torch.tensor([0.0, 2.0, 10.0, 14.0])
    batch_std = float(r.std())
    batch, _ = normalise_in_groups(r, 2, "batch", eps=0.0)
    assert batch.tolist() == pytest.approx([-1 / batch_std, 1 / batch_std, -2 / batch_std, 2 / batch_std])
    none, _ = normalise_in_groups(r, 2, "none")
    assert none.tolist() == [-1.0, 1.0, -2.0, 2.0]


def test_sum_then_normalise_differs_from_normalise_then_sum():
    rewards = {"a": torch.tensor([0.0, 1.0, 0.0, 1.0]), "b": torch.tensor([0.0, 10.0, 10.0, 0.0])}
    weights = {"a": 1.0, "b": 0.5}
    summed = group_advantages(rewards, weights, GRPOConfig(group_size=2, std_epsilon=0.0))
    total = torch.tensor([0.0, 6.0, 5.0, 1.0])  # a + 0.5 b
    assert summed.total_reward.tolist() == total.tolist()
    s = math.sqrt(18.0)  # std of (0, 6); of (5, 1) it is sqrt(8)
    assert summed.advantages.tolist() == pytest.approx([-3 / s, 3 / s, 2 / math.sqrt(8), -2 / math.sqrt(8)])
    config = GRPOConfig(group_size=2, combine="normalize_then_sum", std_epsilon=0.0)
    each = group_advantages(rewards, weights, config)
    z = 1 / math.sqrt(2)  # the z-score of the two values of a group of 2 (unbiased std)
    summed = torch.tensor([-z - 0.5 * z, z + 0.5 * z, -z + 0.5 * z, z - 0.5 * z])
    # TRL's normalize_then_sum ends with a normalisation over the whole batch
    expected = (summed - summed.mean()) / summed.std()
    assert each.advantages.tolist() == pytest.approx(expected.tolist())
    assert each.advantages.std().item() == pytest.approx(1.0)


def test_normalize_then_sum_ignores_scale_rewards_as_trl():
    rewards = {"a": torch.tensor([0.0, 1.0, 0.0, 3.0]), "b": torch.tensor([2.0, 0.0, 5.0, 1.0])}
    weights = {"a": 1.0, "b": 1.0}
    runs = [
        group_advantages(
            rewards, weights, GRPOConfig(group_size=2, combine="normalize_then_sum", scale_rewards=s)
        )
        for s in ("group", "batch", "none")
    ]
    for other in runs[1:]:
        torch.testing.assert_close(other.advantages, runs[0].advantages)


def test_the_older_combine_names_are_aliases_of_trls():
    assert GRPOConfig(group_size=2, combine="sum").combine == "sum_then_normalize"
    assert GRPOConfig(group_size=2, combine="normalise").combine == "normalize_then_sum"
    with pytest.raises(ValueError, match="combine: must be sum_then_normalize or normalize_then_sum"):
        GRPOConfig(group_size=2, combine="mean")


def test_zero_weight_rewards_are_left_out_and_all_zero_is_an_error():
    rewards = {"a": torch.tensor([0.0, 1.0]), "b": torch.tensor([float("nan"), 0.0])}
    adv = group_advantages(rewards, {"a": 1.0, "b": 0.0}, GRPOConfig(group_size=2))
    assert torch.isfinite(adv.advantages).all()
    with pytest.raises(ValueError, match="no reward has a non-zero weight"):
        group_advantages(rewards, {"a": 0.0}, GRPOConfig(group_size=2))


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"group_size": 1}, "group_size"),
        ({"epsilon_low": 0.0}, "epsilon_low"),
        ({"epsilon_high": -0.1}, "epsilon_high"),
        ({"beta": -1.0}, "beta"),
        ({"num_iterations": 0}, "num_iterations"),
    ],
)
def test_bad_configs_name_the_key(changes, key):
    with pytest.raises(ValueError, match=rf"{key}: "):
        GRPOConfig(**changes)


class LinearPolicy(torch.nn.Module):
    """Token log-probs of a softmax policy over 5 tokens, per (row, position) feature."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)))

    def forward(self, features, tokens):
        return torch.log_softmax(features @ self.w, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_on_policy_ratio_is_one_and_the_gradient_is_the_policy_gradient(loss_type):
    g = torch.Generator().manual_seed(1)
    features, tokens = torch.randn(4, 6, 3, generator=g), torch.randint(0, 5, (4, 6), generator=g)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4, [1] * 5 + [0]], dtype=torch.float32)
    advantages = torch.tensor([1.0, -0.5, 0.25, -0.75])
    config = GRPOConfig(group_size=2, loss_type=loss_type, max_completion_length=8)
    policy = LinearPolicy()

    logp = policy(features, tokens)
    loss, stats = clipped_policy_loss(logp, logp.detach(), advantages, mask, config)
    assert stats.ratio_mean == 1.0 and stats.clip_fraction == 0.0
    (grad,) = torch.autograd.grad(loss, policy.w)

    # REINFORCE with the group-relative advantage: -sum_i,t c_i,t A_i grad log pi(o_i,t), with c the loss
    # type's per-token weight.
    logp = policy(features, tokens)
    if loss_type == "grpo":
        weight = mask / mask.sum(1, keepdim=True) / len(mask)
    elif loss_type == "dapo":
        weight = mask / mask.sum()
    else:
        weight = mask / (len(mask) * 8)
    surrogate = -(weight * advantages.unsqueeze(1) * logp).sum()
    (expected,) = torch.autograd.grad(surrogate, policy.w)
    torch.testing.assert_close(grad, expected)
    assert float(loss.detach()) == pytest.approx(float(-(weight * advantages.unsqueeze(1)).sum()), abs=1e-6)


def test_clipping_stops_the_gradient_outside_the_trust_region():
    logp = torch.tensor([[0.5, -0.5, 0.05]], requires_grad=True)
    old = torch.zeros(1, 3)
    config = GRPOConfig(group_size=2, epsilon_low=0.2, epsilon_high=0.28, loss_type="dapo")
    loss, stats = clipped_policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 3), config)
    loss.backward()
    # ratio e^0.5 > 1.28 with A > 0: clipped, no gradient; e^-0.5 < 0.8 with A > 0: not clipped (min picks
    # the unclipped, lower value); e^0.05 inside the region.
    assert logp.grad[0, 0] == 0
    assert logp.grad[0, 1] != 0 and logp.grad[0, 2] != 0
    assert stats.high_clip_fraction == pytest.approx(1 / 3) and stats.low_clip_fraction == 0.0


def trl_grpo_loss(logp, old_logp, ref_logp, advantages, mask, beta, eps_low, eps_high, loss_type, max_len):
    """TRL GRPOTrainer._compute_loss, written out from its documentation (token level, k3 KL)."""
    coef_1 = torch.exp(logp - old_logp)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    per_token_loss1 = coef_1 * advantages.unsqueeze(1)
    per_token_loss2 = coef_2 * advantages.unsqueeze(1)
    per_token_loss = -torch.min(per_token_loss1, per_token_loss2)
    if beta != 0.0:
        per_token_kl = torch.exp(ref_logp - logp) - (ref_logp - logp) - 1
        per_token_loss = per_token_loss + beta * per_token_kl
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dapo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_len)


@pytest.fixture(scope="module")
def tiny_lm():
    config = Qwen2Config(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config).eval()


def completion_logp(model, ids, prompt_length):
    logits = model(input_ids=ids).logits[:, prompt_length - 1 : -1]
    return torch.log_softmax(logits.float(), -1).gather(-1, ids[:, prompt_length:, None]).squeeze(-1)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_token_loss_equals_trls_formula_on_a_tiny_causal_lm(tiny_lm, loss_type):
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 50, (4, 12), generator=g)
    prompt_length, max_len = 5, 9
    mask = torch.ones(4, 7)
    mask[1, 5:] = 0
    mask[3, 2:] = 0
    logp = completion_logp(tiny_lm, ids, prompt_length)
    old = (logp + 0.3 * torch.randn(logp.shape, generator=g)).detach()  # a later iteration: ratio != 1
    ref = (logp + 0.1 * torch.randn(logp.shape, generator=g)).detach()
    advantages = torch.tensor([0.9, -0.9, 1.2, -1.2])
    config = GRPOConfig(
        group_size=2,
        beta=0.04,
        epsilon_low=0.2,
        epsilon_high=0.28,
        loss_type=loss_type,
        max_completion_length=max_len,
    )
    ours, stats = clipped_policy_loss(logp, old, advantages, mask, config, k3_kl(logp, ref))
    theirs = trl_grpo_loss(logp, old, ref, advantages, mask, 0.04, 0.2, 0.28, loss_type, max_len)
    torch.testing.assert_close(ours, theirs)
    assert 0 < stats.clip_fraction < 1


def test_k3_kl_is_zero_with_a_zero_adapter_and_positive_once_it_moves(tiny_lm):
    import copy

    model = add_lora(copy.deepcopy(tiny_lm), LoraSpec(rank=4, target_modules=("q_proj", "v_proj")))
    ids = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logp = completion_logp(model, ids, 4)
        with adapters_disabled(model):
            ref = completion_logp(model, ids, 4)
        assert torch.equal(k3_kl(logp, ref), torch.zeros_like(logp))
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
        moved = completion_logp(model, ids, 4)
    assert (k3_kl(moved, ref) > 0).any() and (k3_kl(moved, ref) >= 0).all()


def zero_std_half_batch():
    """Rows 2-3 form a zero-std group (advantage 0); every row has a KL term."""
    g = torch.Generator().manual_seed(7)
    logp = torch.randn(4, 5, generator=g)
    old = logp + 0.2 * torch.randn(4, 5, generator=g)
    ref = logp + 0.3 * torch.randn(4, 5, generator=g)
    mask = torch.ones(4, 5)
    mask[1, 3:] = 0
    mask[2, 4:] = 0
    advantages = torch.tensor([0.8, -0.8, 0.0, 0.0])
    return logp, old, ref, mask, advantages


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_zero_std_groups_count_as_in_trl_unless_masked(loss_type):
    logp, old, ref, mask, advantages = zero_std_half_batch()
    adv = group_advantages({"r": torch.tensor([1.0, 0.0, 2.0, 2.0])}, {"r": 1.0}, GRPOConfig(group_size=2))
    assert adv.zero_std.tolist() == [False, False, True, True]
    kl = k3_kl(logp, ref)

    trl = GRPOConfig(group_size=2, beta=0.04, loss_type=loss_type, max_completion_length=6)
    keep = sample_mask(adv, trl)
    ours, _ = clipped_policy_loss(logp, old, advantages, mask, trl, kl, keep=keep)
    theirs = trl_grpo_loss(logp, old, ref, advantages, mask, 0.04, 0.2, 0.2, loss_type, 6)
    torch.testing.assert_close(ours, theirs)  # all tokens counted, the masked group's KL kept

    # Masked: the loss is that of the batch without the zero-std group, KL and normaliser included.
    dapo_like = GRPOConfig(
        group_size=2, beta=0.04, loss_type=loss_type, max_completion_length=6, mask_zero_std_groups=True
    )
    keep = sample_mask(adv, dapo_like)
    masked, stats = clipped_policy_loss(logp, old, advantages, mask, dapo_like, kl, keep=keep)
    without = trl_grpo_loss(
        logp[:2], old[:2], ref[:2], advantages[:2], mask[:2], 0.04, 0.2, 0.2, loss_type, 6
    )
    torch.testing.assert_close(masked, without)
    assert stats.kl_mean == pytest.approx(float((kl[:2] * mask[:2]).sum() / mask[:2].sum()))
