"""SFT on tiny models and a small fixed-seed world: the learning is real, and a crashed run resumes."""

import os

import numpy as np
import pytest
import torch

from tests.training.worlds import CrashAt, captioned_world
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.samples import TripletSamples
from vans_pipelines.training.data import FrameSamples, SamplesDataModule, collate_frames
from vans_pipelines.training.trainer import OptimConfig, RunPaths, TrainerConfig, fit
from vans_pipelines.training.vdm_sft import VAEFitModule, VDMSFTModule, evaluate_vae, evaluate_vdm
from vans_pipelines.training.vlm_sft import VLMSFTModule, evaluate_vlm

GEOMETRY = {"context_frames": 8, "target_frames": 8, "height": 32, "width": 32}

# CPU in CI; VANS_TEST_ACCELERATOR=gpu runs these training tests on a GPU (the CUDA path).
TEST_ACCELERATOR = os.environ.get("VANS_TEST_ACCELERATOR", "cpu")


@pytest.fixture(scope="module")
def world():
    train, val, captions, tokenizer = captioned_world(64, 16, **GEOMETRY)
    return train, val, TripletSamples(train, captions), TripletSamples(val, captions), tokenizer


def trainer(steps, batch=16, every=1000):
    return TrainerConfig(
        accelerator=TEST_ACCELERATOR,
        devices=1,
        max_steps=steps,
        batch_size=batch,
        checkpoint_every_n_steps=every,
    )


@pytest.mark.slow
def test_vlm_sft_lifts_caption_rouge_far_above_the_untrained_model(world, tmp_path):
    _, _, train, val, tokenizer = world
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0, seed=0)
    before = evaluate_vlm(vlm, val, max_new_tokens=40)
    params = {name: p.clone() for name, p in vlm.model.named_parameters()}
    fit(
        VLMSFTModule(vlm, OptimConfig(lr=2e-3, warmup_steps=10), log_samples=0),
        SamplesDataModule(train, 16, 0),
        trainer(150),
        RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test").training("sft_vlm", "k"),
    )
    vlm.model.eval()
    after = evaluate_vlm(vlm, val, max_new_tokens=40)
    assert all(not torch.equal(params[n], p) for n, p in vlm.model.named_parameters())
    assert before["rouge_l"] < 0.1
    assert after["rouge_l"] > before["rouge_l"] + 0.25
    assert after["format_rate"] > 0.9


def test_a_short_vae_fit_keeps_the_objects_the_oracle_reads(tmp_path):
    """The embedded VAE's contract: after a short fit on world frames, the oracle still reads the event
    from encode -> decode of the clips (a 4x VAE read none; a blurred one misreads shapes)."""
    geometry = {"context_frames": 4, "target_frames": 16, "height": 32, "width": 32}
    train, _, captions, tokenizer = captioned_world(12, 1, **geometry)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    samples = TripletSamples(train, captions)
    untrained = evaluate_vae(vdm, samples)
    fit(
        VAEFitModule(vdm, OptimConfig(lr=3e-3, warmup_steps=10), foreground_weight=10.0),
        SamplesDataModule(FrameSamples(train), 8, 0, collate_fn=collate_frames),
        trainer(500, batch=8),
        RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test").training("sft_vae", "k"),
    )
    vdm.vae.eval()
    fitted = evaluate_vae(vdm, samples)
    assert untrained["oracle_event_accuracy_raw"] == 1.0
    assert untrained["oracle_event_accuracy_reconstructed"] == 0.0
    # 0.75 measured (0.5 when only object pixels were weighted up: circles came back square)
    assert fitted["oracle_event_accuracy_reconstructed"] >= 0.6, fitted
    assert fitted["pixel_mse"] < 0.01


@pytest.mark.slow
def test_vdm_sft_generates_clips_closer_to_the_targets(world, tmp_path):
    train_set, _, train, val, tokenizer = world
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=4), seed=0)
    before = evaluate_vdm(vdm, val, num_steps=6)
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test")
    fit(
        VAEFitModule(vdm, OptimConfig(lr=2e-3, warmup_steps=5)),
        SamplesDataModule(FrameSamples(train_set), 32, 0, collate_fn=collate_frames),
        trainer(60, batch=32),
        paths.training("sft_vae", "k"),
    )
    fit(
        VDMSFTModule(vdm, OptimConfig(lr=1e-3, warmup_steps=10), train_text_encoder=True, log_samples=0),
        SamplesDataModule(train, 16, 0),
        trainer(120),
        paths.training("sft_vdm", "k"),
    )
    for module in vdm.modules().values():
        module.eval()
    after = evaluate_vdm(vdm, val, num_steps=6)
    assert after["pixel_mse"] < 0.5 * before["pixel_mse"]
    assert {"oracle_event_accuracy", "oracle_kind_accuracy", "still_baseline_pixel_mse"} <= set(after)


def test_a_crashed_run_resumes_from_its_last_checkpoint(world, tmp_path):
    _, _, train, _, tokenizer = world
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test")
    config = trainer(8, batch=8, every=3)

    def module():
        return VLMSFTModule(
            build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0), OptimConfig(lr=1e-3), log_samples=0
        )

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(
            module(),
            SamplesDataModule(train, 8, 0),
            config,
            paths.training("sft_vlm", "k", [CrashAt(5)]),
        )
    assert (tmp_path / "ckpt" / "sft_vlm" / "k" / "last.ckpt").is_file()
    result = fit(module(), SamplesDataModule(train, 8, 0), config, paths.training("sft_vlm", "k"))
    assert result.resumed_from_step == 3  # the last checkpoint before the crash at step 5
    assert result.global_step == 8
    assert not (tmp_path / "ckpt" / "sft_vlm" / "k").exists()  # finished runs leave no resume state
    # Other settings never resume from this run's checkpoints.
    other = fit(module(), SamplesDataModule(train, 8, 0), config, paths.training("sft_vlm", "other-key"))
    assert other.resumed_from_step is None


def test_frame_samples_cover_context_and_target(world):
    train_set = world[0]
    frames = FrameSamples(train_set)
    assert len(frames) == len(train_set) * 16
    _context, target = train_set.clips(train_set.index["sample_id"].iloc[0])
    np.testing.assert_array_equal(frames[8], target[0])


def test_a_batch_larger_than_the_split_names_its_key(world):
    from vans_pipelines.training.data import check_batch_fits

    train = world[2]
    check_batch_fits("sft.vlm.trainer.batch_size", 32, train, processes=2)
    with pytest.raises(ValueError, match=r"sft\.vlm\.trainer\.batch_size: 33 x 2 process\(es\) is larger"):
        check_batch_fits("sft.vlm.trainer.batch_size", 33, train, processes=2)


def test_a_truncated_checkpoint_is_dropped_and_the_stage_starts_over(world, tmp_path, caplog):
    _, _, train, _, tokenizer = world
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test")
    last = tmp_path / "ckpt" / "sft_vlm" / "k" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04 truncated by a kill")
    module = VLMSFTModule(
        build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0), OptimConfig(lr=1e-3), log_samples=0
    )
    result = fit(module, SamplesDataModule(train, 8, 0), trainer(2, batch=8), paths.training("sft_vlm", "k"))
    assert result.resumed_from_step is None and result.global_step == 2
    assert "starting this stage over" in caplog.text


def test_training_logs_its_progress_and_none_of_lightnings_expected_warnings(world, tmp_path, caplog):
    import logging
    import warnings

    from vans_pipelines.training.data import TrainValDataModule

    _, _, train, val, tokenizer = world
    paths = RunPaths(str(tmp_path / "tb"), str(tmp_path / "ckpt"), "test")
    module = VLMSFTModule(
        build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0), OptimConfig(lr=1e-3), log_samples=0
    )
    config = TrainerConfig(
        accelerator=TEST_ACCELERATOR, devices=1, max_steps=4, batch_size=8, log_every_n_steps=2
    )
    module.vlm.model.lm_head.eval()  # a part in eval mode, as the GRPO stages register their frozen renderer
    with caplog.at_level(logging.INFO, logger="vans_pipelines"), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit(module, TrainValDataModule(train, val, 8, 0), config, paths.training("sft_vlm", "k"))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sft_vlm: step ")]
    assert progress[0].startswith("sft_vlm: step 1/4, loss ") and "ETA" in progress[0]
    assert progress[-1].startswith("sft_vlm: step 4/4, ")
    texts = [str(w.message) for w in seen]
    assert not [t for t in texts if "eval mode" in t or "val_dataloader" in t or "across ranks is zero" in t]

    # Without a val set there is no val loader at all (no "val_dataloader but no validation_step" warning).
    from lightning.pytorch.utilities.model_helpers import is_overridden

    assert not is_overridden("val_dataloader", SamplesDataModule(train, 8, 0))
    assert is_overridden("val_dataloader", TrainValDataModule(train, val, 8, 0))
