"""Paper-size Joint-GRPO steps: one stage-1 step, one stage-2 step and one evaluation batch with the real
architectures at full size (Qwen2.5-VL-3B and Wan2.1-1.3B configs, random init), under bf16 autocast
(the paper recipe's ``bf16-mixed``) with LoRA r8/alpha32 as the paper: step time, peak memory, throughput
and model FLOPs utilisation (MFU) against the device's dense bf16 peak.

    .venv/bin/python -m benchmarks.paper_scale            # a CUDA GPU (the models need about 40 GB)
    .venv/bin/python -m benchmarks.paper_scale --smoke    # the same code, shrunken configs, on the CPU

What a step is (the project's own functions, as the GRPO modules call them):
- stage 1: ``sample_completions`` (a group of 8 answers of 256 tokens to one prompt whose context is the
  paper's 6 frames at 352x640, plus the log-prob passes), ``render`` of the 8 captions by the frozen Wan2.1
  (20 steps, 33 frames at 352x640), then ``token_policy_loss`` forward and backward and an AdamW step;
- stage 2: ``sample_trajectories`` (8 clips, 20 SDE steps, decoded), then ``trajectory_losses`` forward
  and backward over every SDE step and an AdamW step;
- evaluation: greedy answers to 4 prompts and their ODE renders (50 steps).
Rewards are left out (random advantages): the scorer's cost is small beside these.

FLOPs are counted by ``torch.utils.flop_counter`` (matmuls, convolutions and attention, forward and
backward) in an untimed warm-up of each part (on the CPU the counter has no formula for torch's flash
attention kernel, so ``--smoke`` FLOPs leave attention out); times are the best of ``--repeats`` runs
after it. The text
encoder is a 2-layer UMT5 at UMT5-XXL's width (Wan2.1's 24-layer encoder runs once per prompt and is not
what a step is made of). MFU needs the device's peak: known GPUs are looked up, ``--peak-tflops`` sets it.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from torch.utils.flop_counter import FlopCounterMode
from transformers import Qwen2_5_VLForConditionalGeneration, UMT5Config, UMT5EncoderModel

from benchmarks.figures import write_figures
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.render import render
from vans_pipelines.models.tiny import qwen_vl_config
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vdm import Conditioning, VideoDiffusionModel
from vans_pipelines.models.vlm import VideoProcessing, VisionLanguageModel
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.training.ablation import adapter_change
from vans_pipelines.training.grpo_vdm import sample_trajectories, trajectory_losses
from vans_pipelines.training.grpo_vlm import SamplingConfig, sample_completions, token_policy_loss
from vans_pipelines.world import render_split

#: Dense bf16 tensor-core peaks (FLOP/s) by a substring of the device name.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "4090": 165e12}


@dataclass(frozen=True)
class Scale:
    """Model sizes and the step's geometry."""

    vlm_text: dict[str, Any]
    vlm_vision: dict[str, Any]
    vlm_patch: int
    wan: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    frames: int = 33
    height: int = 352
    width: int = 640
    context_frames: int = 6
    group: int = 8
    max_new_tokens: int = 256
    render_steps: int = 20
    sde_steps: int = 20
    eval_steps: int = 50
    eval_batch: int = 4
    text_max_length: int = 64  # caption tokens of the text encoder (Wan2.1 pads to 512)
    text_vocab_size: int | None = None  # the text encoder's vocabulary (None: the word tokenizer's)
    lora_vlm: LoraSpec = field(
        default_factory=lambda: LoraSpec(
            rank=8, alpha=32, target_modules=("q_proj", "k_proj", "v_proj", "o_proj")
        )
    )
    lora_vdm: LoraSpec = field(
        default_factory=lambda: LoraSpec(
            rank=8, alpha=32, target_modules=("to_q", "to_k", "to_v", "to_out.0")
        )
    )


#: Qwen2.5-VL-3B-Instruct and Wan2.1-T2V-1.3B (their published configs), at the paper's clip geometry.
PAPER = Scale(
    vlm_text={
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128000,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": True,
    },
    vlm_vision={
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "out_hidden_size": 2048,
        "fullatt_block_indexes": [7, 15, 23, 31],
    },
    vlm_patch=14,
    wan={
        "patch_size": (1, 2, 2),
        "num_attention_heads": 12,
        "attention_head_dim": 128,
        "out_channels": 16,
        "text_dim": 4096,
        "freq_dim": 256,
        "ffn_dim": 8960,
        "num_layers": 30,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
    },
    vae={"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2},
    text_encoder={"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 2, "num_heads": 64},
)

#: The same code on a CPU in seconds: every size shrunk, the Wan VAE's temporal compression kept (4k+1).
SMOKE = Scale(
    vlm_text={
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [4, 2, 2]},
    },
    vlm_vision={
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 8,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 32,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    },
    vlm_patch=8,
    wan={
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 16,
        "out_channels": 4,
        "text_dim": 32,
        "freq_dim": 32,
        "ffn_dim": 64,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
    },
    vae={"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1},
    text_encoder={"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 1, "num_heads": 2},
    frames=25,  # 4k + 1; the 6 context frames take 6 of its 7 latent frames
    height=32,
    width=64,
    context_frames=6,
    group=2,
    max_new_tokens=8,
    render_steps=2,
    sde_steps=2,
    eval_steps=2,
    eval_batch=2,
)


def build_models(
    scale: Scale, device: torch.device, *, adapters: bool = True
) -> tuple[VisionLanguageModel, VideoDiffusionModel]:
    """Random-init models of the real classes at ``scale`` (fp32 weights, as ``bf16-mixed`` keeps them),
    each with the paper's LoRA adapter unless ``adapters`` is False; a word tokenizer stands in for Qwen's
    (sizes come from the config)."""
    world = render_split(
        0, "train", 8, context_frames=scale.context_frames, target_frames=2, height=32, width=32
    )
    tokenizer = build_word_tokenizer([t.caption for t in world] + [t.question for t in world])
    config = qwen_vl_config(tokenizer, scale.vlm_text, scale.vlm_vision)
    with device:
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    processing = VideoProcessing(
        patch_size=scale.vlm_patch,
        temporal_patch_size=2,
        merge_size=2,
        max_frames=scale.context_frames,
        max_pixels=scale.height * scale.width,
        fps=16.0,
    )
    vlm = VisionLanguageModel(model, tokenizer, processing)
    if adapters:
        vlm.start_adapter(scale.lora_vlm, seed=0)

    conditioning = Conditioning(context_frames=scale.context_frames, text_max_length=scale.text_max_length)
    z = scale.vae["z_dim"]
    with device:
        vae = AutoencoderKLWan(
            **scale.vae,
            temperal_downsample=[False, True, True],
            latents_mean=[0.0] * z,
            latents_std=[1.0] * z,
        ).eval()
        transformer = WanTransformer3DModel(
            **scale.wan, in_channels=z + conditioning.condition_channels(z), rope_max_seq_len=1024
        )
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=scale.text_vocab_size or len(tokenizer),
                **scale.text_encoder,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.pad_token_id,
                dropout_rate=0.0,
            )
        ).eval()
    vdm = VideoDiffusionModel(transformer, vae, text_encoder, tokenizer, conditioning)
    if adapters:
        vdm.start_adapter(scale.lora_vdm, seed=0)
    return vlm, vdm


@dataclass
class Measured:
    """One part's best time over the timed runs, the FLOPs of one run, the peak memory and the units of
    work of one run (``units``: what ``throughput`` counts)."""

    name: str
    seconds: float
    flops: float
    peak_memory_gb: float
    units: float
    unit_name: str

    def row(self, peak: float | None) -> dict[str, Any]:
        return {
            "part": self.name,
            "seconds": round(self.seconds, 3),
            "tflops_per_run": round(self.flops / 1e12, 3),
            "achieved_tflops_per_s": round(self.flops / self.seconds / 1e12, 3),
            "mfu": round(self.flops / self.seconds / peak, 4) if peak else None,
            "peak_memory_gb": round(self.peak_memory_gb, 2),
            f"{self.unit_name}_per_s": round(self.units / self.seconds, 1),
        }


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB; the process's peak RSS


def measure(
    name: str, run: Callable[[int], None], device: torch.device, repeats: int, units: float, unit_name: str
) -> Measured:
    """Warm up once while counting FLOPs, then time ``repeats`` runs (seeded by the run index)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    counter = FlopCounterMode(display=False)
    with counter:
        run(0)
    best = float("inf")
    for k in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run(k + 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return Measured(name, best, counter.get_total_flops(), peak_memory_gb(device), units, unit_name)


def context_clips(scale: Scale, count: int) -> tuple[np.ndarray, list[str]]:
    """Context clips at the paper's geometry (the world's scenes, resized) and their questions."""
    world = list(
        render_split(
            0,
            "test",
            count,
            context_frames=scale.context_frames,
            target_frames=2,  # the world's least (ingest.clip.target_frames >= 2)
            height=scale.height,
            width=scale.width,
        )
    )
    return np.stack([t.context for t in world]), [t.question for t in world]


def run_benchmark(
    scale: Scale, device: torch.device, repeats: int
) -> tuple[list[Measured], VisionLanguageModel, VideoDiffusionModel]:
    """Build the models at ``scale`` on ``device`` and measure the three parts; the models come back with
    the adapters those steps trained."""
    torch.manual_seed(0)
    vlm, vdm = build_models(scale, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    contexts, questions = context_clips(scale, max(scale.eval_batch, 1))
    G = scale.group
    grpo = GRPOConfig(group_size=G, beta=0.04, max_completion_length=scale.max_new_tokens)
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=scale.max_new_tokens)
    sde = SDEConfig(num_steps=scale.sde_steps, noise_level=0.7)
    advantages = torch.linspace(-1, 1, G, device=device)
    keep = torch.ones(G, dtype=torch.bool, device=device)
    vlm_optimizer = torch.optim.AdamW([p for p in vlm.model.parameters() if p.requires_grad], lr=5e-5)
    vdm_optimizer = torch.optim.AdamW([p for p in vdm.transformer.parameters() if p.requires_grad], lr=5e-5)
    batch = {"context": contexts[:1], "question": questions[:1]}
    latent_grid = vdm.latent_shape(scale.frames, scale.height, scale.width)[1:]
    tokens_per_clip = int(np.prod(latent_grid)) // int(np.prod(scale.wan["patch_size"]))

    def stage1(seed: int) -> None:
        with autocast:
            completions = sample_completions(vlm, batch, grpo, sampling, seed)
            render(
                vdm,
                completions.captions,
                contexts[:1],
                frames=scale.frames,
                num_steps=scale.render_steps,
                seed=seed,
                repeats=G,
            )
            vlm.model.train()
            loss, _ = token_policy_loss(vlm, completions, advantages, keep, grpo, sampling)
        loss.backward()
        vlm_optimizer.step()
        vlm_optimizer.zero_grad(set_to_none=True)
        vlm.model.eval()

    def stage2(seed: int) -> None:
        captions = [f"{questions[0]} {k}" for k in range(G)]
        with autocast:
            sampled = sample_trajectories(
                vdm,
                captions,
                np.repeat(contexts[:1], G, axis=0),
                scale.frames,
                sde,
                torch.Generator().manual_seed(seed),
            )
            vdm.transformer.train()
            for loss, _ in trajectory_losses(vdm, sampled, advantages, keep, grpo, sde):
                loss.backward()
        vdm_optimizer.step()
        vdm_optimizer.zero_grad(set_to_none=True)
        vdm.transformer.eval()

    def evaluation(seed: int) -> None:
        n = scale.eval_batch
        with autocast, torch.no_grad():
            answers = vlm.generate(list(contexts[:n]), questions[:n], max_new_tokens=scale.max_new_tokens)
            render(
                vdm,
                answers.texts,
                contexts[:n],
                frames=scale.frames,
                num_steps=scale.eval_steps,
                seed=seed,
                batch_size=n,
            )

    parts = [
        measure("stage1_step", stage1, device, repeats, G * scale.max_new_tokens, "generated_tokens"),
        measure(
            "stage2_step",
            stage2,
            device,
            repeats,
            G * tokens_per_clip * 2 * scale.sde_steps,
            "dit_tokens",
        ),
        measure(
            "eval_batch",
            evaluation,
            device,
            repeats,
            scale.eval_batch * tokens_per_clip * scale.eval_steps,
            "dit_tokens",
        ),
    ]
    return parts, vlm, vdm


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="shrunken configs on the CPU (what CI runs)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    scale = SMOKE if args.smoke else PAPER
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if not args.smoke and device.type != "cuda":
        raise SystemExit("paper_scale: the full-size step needs a CUDA GPU; --smoke runs the CPU version")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = (
        args.peak_tflops * 1e12
        if args.peak_tflops
        else next((v for k, v in PEAK_BF16.items() if k in name), None)
    )
    parts, vlm, vdm = run_benchmark(scale, device, args.repeats)
    rows = [p.row(peak) for p in parts]
    # LoRA's B starts at zero: a non-zero change means the stage steps back-propagated and stepped.
    trained = {
        "vlm_adapter_change": adapter_change(vlm.model),
        "vdm_adapter_change": adapter_change(vdm.transformer),
    }
    geometry = {
        "frames": scale.frames,
        "height": scale.height,
        "width": scale.width,
        "context_frames": scale.context_frames,
        "latent_frames": vdm.latent_shape(scale.frames, scale.height, scale.width)[1],
        "wan_layers": scale.wan["num_layers"],
        "vlm_text_layers": scale.vlm_text["num_hidden_layers"],
    }
    print(
        f"paper_scale ({'smoke' if args.smoke else 'paper'}) on {name}, torch {torch.__version__}, peak bf16 "
        f"{'%.0f TFLOP/s' % (peak / 1e12) if peak else 'unknown (MFU not computed)'}"
    )
    for row in rows:
        print("  " + ", ".join(f"{k} {v}" for k, v in row.items()))
    figures = {"device": name, "peak_flops": peak, "rows": rows, **trained, "geometry": geometry}
    write_figures(Path(args.json) if args.json else None, figures, smoke=args.smoke)
    return rows


if __name__ == "__main__":
    main()
