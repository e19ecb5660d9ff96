"""The flow-matching recipe against its formulas: noise-level draws, loss weights, caption dropout."""

import math

import pytest
import torch

from vans_pipelines.models.flow_matching import FlowMatchingRecipe
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.vdm import Conditioning


def test_uniform_draws_are_torch_rand_so_the_plain_recipe_keeps_its_stream():
    draws = FlowMatchingRecipe().draw(5, torch.Generator().manual_seed(3))
    assert torch.equal(draws, torch.rand(5, generator=torch.Generator().manual_seed(3)))


def test_logit_normal_draws_are_the_sigmoid_of_a_normal():
    recipe = FlowMatchingRecipe(scheme="logit_normal", logit_mean=0.5, logit_std=0.8)
    draws = recipe.draw(20_000, torch.Generator().manual_seed(0))
    logits = torch.logit(draws.double())
    assert abs(logits.mean().item() - 0.5) < 0.02 and abs(logits.std().item() - 0.8) < 0.02
    assert draws.min() > 0 and draws.max() < 1


def test_stratified_draws_put_one_level_in_each_slice_of_the_unit_interval():
    draws = FlowMatchingRecipe(scheme="stratified").draw(8, torch.Generator().manual_seed(0))
    assert torch.equal(torch.floor(draws * 8), torch.arange(8.0))
    assert torch.allclose(draws * 8 - torch.arange(8.0), (draws[0] * 8).expand(8))  # one shared offset


def test_loss_weights_follow_sd3():
    sigmas = torch.tensor([0.25, 0.5])
    assert torch.equal(FlowMatchingRecipe().weights(sigmas), torch.ones(2))
    cosmap = FlowMatchingRecipe(loss_weighting="cosmap").weights(sigmas)
    expected = [2 / (math.pi * (1 - 2 * s + 2 * s * s)) for s in (0.25, 0.5)]
    assert torch.allclose(cosmap, torch.tensor(expected))


def test_caption_dropout_empties_about_that_share_and_draws_nothing_when_off():
    captions = [f"caption {i}" for i in range(4000)]
    generator = torch.Generator().manual_seed(0)
    assert FlowMatchingRecipe().drop_captions(captions, generator) is captions
    assert torch.equal(
        torch.rand(1, generator=generator), torch.rand(1, generator=torch.Generator().manual_seed(0))
    )
    kept = FlowMatchingRecipe(caption_dropout=0.25).drop_captions(captions, torch.Generator().manual_seed(0))
    dropped = [k for k in kept if k == ""]
    assert 0.22 < len(dropped) / len(captions) < 0.28
    assert all(k in ("", c) for k, c in zip(kept, captions, strict=True))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("scheme", "cubic", "scheme: must be uniform, logit_normal, mode or stratified"),
        ("loss_weighting", "snr", "loss_weighting: must be none, sigma_sqrt or cosmap"),
        ("logit_std", 0.0, "logit_std: must be > 0"),
        ("caption_dropout", 1.0, r"caption_dropout: must be in \[0, 1\)"),
    ],
)
def test_bad_settings_name_their_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        FlowMatchingRecipe(**{field: value})


def test_the_plain_recipe_is_the_rectified_flow_loss_written_out(tokenizer):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    x0 = torch.randn(2, 8, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    cond = vdm.context_condition(torch.randn(2, 8, 2, 16, 16), 4)
    captions = ["the red circle falls."] * 2
    with torch.no_grad():
        loss = vdm.latent_flow_matching_loss(x0, cond, captions, torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(0)
        sigma = torch.rand(2, generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        s = sigma.view(2, 1, 1, 1, 1)
        v = vdm.velocity((1 - s) * x0 + s * noise, sigma, vdm.encode_text(captions), cond)
        assert torch.equal(loss, torch.nn.functional.mse_loss(v, noise - x0))
        weighted = FlowMatchingRecipe(loss_weighting="cosmap")
        loss = vdm.latent_flow_matching_loss(x0, cond, captions, torch.Generator().manual_seed(0), weighted)
        per_sample = (v - (noise - x0)).pow(2).flatten(1).mean(1)
        assert torch.allclose(loss, (weighted.weights(sigma) * per_sample).mean())
