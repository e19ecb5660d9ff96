"""benchmarks/vdm_scaling.py: layouts reach the model; one curve point trains and measures for real."""

import pytest
import torch

from benchmarks.vdm_scaling import LAYOUTS, train_and_measure, vdm_params, with_layout
from tests.training.worlds import captioned_world
from vans_pipelines.models.tiny import build_tiny_vdm
from vans_pipelines.params import parse_section
from vans_pipelines.samples import TripletSamples
from vans_pipelines.training.trainer import RunPaths
from vans_pipelines.training.vdm_sft import encode_latents, fit_vae

GEOMETRY = {"context_frames": 6, "target_frames": 4, "height": 32, "width": 32}


def sft_section(steps: int = 3) -> dict:
    vdm = {
        "conditioning": {"context_frames": 2, "repeat_last_frame": True},
        "vae_fit": {"steps": steps, "batch_frames": 4, "stats_frames": 16},
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": steps, "batch_size": 4},
        "eval": {"num_steps": 2, "limit": 2},
    }
    return {"vlm": {}, "vdm": vdm}


def test_layouts_and_overrides_reach_the_vdm_settings():
    sft = vdm_params({"sft": sft_section()}, {"sft": {"vdm": {"optim": {"lr": 0.01}}}})
    params = with_layout(sft, "width256", 50)
    assert params.tiny.num_heads == LAYOUTS["width256"]["tiny"]["num_heads"]
    assert params.trainer.max_steps == 50 and params.optim.lr == 0.01
    assert with_layout(sft, "default", 7).tiny == parse_section("sft", sft).vdm.tiny
    both = with_layout(sft, "old+shift8", 7)  # composed in order: the later recipe wins
    assert both.conditioning.shift == 8.0 and both.flow_matching.scheme == "uniform"
    with pytest.raises(ValueError, match="--layouts: unknown layout 'huge'"):
        with_layout(sft, "huge", 1)


@pytest.mark.slow
def test_one_curve_point_trains_the_transformer_and_reads_val_with_the_oracle(tmp_path):
    train, val, captions, tokenizer = captioned_world(8, 2, **GEOMETRY)
    sft = vdm_params({"sft": sft_section()}, {})
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test")
    params = with_layout(sft, "default", 3)
    vdm = build_tiny_vdm(tokenizer, params.tiny, params.conditioning, seed=0)
    fit_vae(vdm, train, params.vae_fit, params.trainer, paths.training("sft_vae", "test"))
    vae = vdm.vae
    latents = encode_latents(vdm, TripletSamples(train, captions))
    vae_weights = {n: p.clone() for n, p in vae.named_parameters()}
    rows = {
        layout: train_and_measure(
            with_layout(sft, layout, 3),
            vae,
            tokenizer,
            latents,
            TripletSamples(val, captions),
            paths,
            (1.0, 2.0),
        )
        for layout in ("default", "width128")
    }
    for pair in rows.values():
        assert [row["guidance"] for row in pair] == [1.0, 2.0]  # one trained model, sampled at each scale
        assert pair[0]["train_flow_loss"] == pair[1]["train_flow_loss"]
        for row in pair:
            assert row["samples"] == 2 and 0 <= row["oracle_event_accuracy"] <= 1
            assert row["train_flow_loss"] > 0 and row["pixel_mse"] > 0
    assert rows["default"][0]["parameters"] > rows["width128"][0]["parameters"]  # the default: width 256
    assert all(torch.equal(vae_weights[n], p) for n, p in vae.named_parameters())  # the VAE stays frozen
