"""Peak GPU memory of every conf/paper step at full model size, estimated on this CPU with fake tensors.

    .venv/bin/python -m benchmarks.paper_memory --max-gb 80     # the paper recipe (a few minutes, no GPU)
    .venv/bin/python -m benchmarks.paper_memory --smoke         # shrunken models (what CI runs)

For each step of ``kedro run --env paper`` that trains or evaluates — the SFT VLM step, the SFT VDM step,
a stage-1 step, a stage-2 step and an evaluation batch — it builds the real model classes at their
published sizes (Qwen2.5-VL-3B; Wan2.1-1.3B with its VAE and the 24-layer UMT5-XXL text encoder) on the
meta device, swaps their weights for fake tensors, and runs the project's own step functions on them
(``VLMSFTModule._loss``, ``flow_matching_loss``, ``sample_completions`` / ``render`` / ``token_policy_loss``,
``sample_trajectories`` / ``trajectory_losses``, ``generate`` / ``render``) under torch's MemTracker
(``vans_pipelines.training.memory``). Nothing is allocated: the table is what one GPU would hold at the
step's peak, split into parameters, gradients, optimiser state, activations and backward temporaries.

What is taken from conf/paper (``kedro``'s config loader, env ``paper``): clip geometry, batch and group
sizes, LoRA adapters, which model is fully fine-tuned, precision (``bf16-mixed``: autocast to bf16,
trainable weights in fp32), AdamW, the SDE steps and window, ``micro_batch_size``,
``activation_checkpointing`` and caption lengths. Weights are in the dtype their loader gives the
released checkpoints: Qwen2.5-VL and UMT5 in bf16 (transformers 5 loads ``dtype="auto"``), Wan2.1's
transformer and VAE in fp32 (diffusers' default); LoRA adapters in fp32 (peft).

Where the estimate takes a short cut, it says so:
- ``generate`` cannot run on fake tensors (its stopping test reads sampled values), so it is replaced by
  one forward over the prompt plus ``max_new_tokens`` tokens with the KV cache on and only the last
  logits kept: the cache a full-length generation ends with, plus one long prefill's transients (more
  than a decode step's).
- Sampling without gradients (the stage-1 render, the evaluation render) holds one denoising step's
  transients at a time, so its peak does not depend on the step count: it runs 2 steps. The stage-2
  rollout keeps every state of its trajectory, so it runs the recipe's steps, and back-propagates the first
  2 trained steps (each step's graph is freed before the next: the peak is one step's).
- AdamW's state exists before the step is tracked (a warm-up step), as it does from the second training
  step on.
Not counted: the CUDA context and kernels' workspaces (about 1-2 GB on an H100), the caching allocator's
fragmentation, and communication buffers under DDP / FSDP.

``--check`` (on by default with ``--smoke``) runs the same steps at the smoke size for real on this CPU,
reads the allocator's peak (``measure_peak``) and prints it beside the estimate; the script fails when
they differ by more than 15 %.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import gc
import itertools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.paper_scale import PAPER, SMOKE, Scale, build_models
from benchmarks.paper_scale import context_clips as world_clips
from vans_pipelines.models.checkpointing import checkpoint_module
from vans_pipelines.models.render import render
from vans_pipelines.models.vlm import Generation, VisionLanguageModel
from vans_pipelines.params import parse_section
from vans_pipelines.training.grpo_vdm import sample_trajectories, trajectory_losses
from vans_pipelines.training.grpo_vlm import SamplingConfig, sample_completions, token_policy_loss
from vans_pipelines.training.memory import (
    GB,
    MemoryBreakdown,
    ShapeOnlyMode,
    estimate_peak,
    fake_weights,
    measure_peak,
)
from vans_pipelines.training.vlm_sft import VLMSFTModule

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("sft_vlm", "sft_vdm", "stage1", "stage2", "eval_batch")
#: The steps from the quickest to estimate to the slowest (workers take the slowest first).
SLOWEST = ("sft_vdm", "eval_batch", "stage1", "sft_vlm", "stage2")
#: Wan2.1's text encoder: UMT5-XXL's encoder (24 layers, 256k vocabulary).
UMT5_XXL = {"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64}
UMT5_VOCAB = 256384
#: How much the estimate may differ from the real peak on the small configuration.
TOLERANCE = 0.15


def paper_recipe(conf: Path = ROOT / "conf") -> dict[str, Any]:
    """The typed sections of ``kedro run --env paper`` that decide a step's memory."""
    from kedro.config import OmegaConfigLoader

    from vans_pipelines.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(conf), **{**CONFIG_LOADER_ARGS, "default_run_env": "paper"})
    parameters = loader["parameters"]
    return {
        name: parse_section(name, parameters.get(name))
        for name in ("ingest", "sft", "grpo_vlm", "grpo_vdm", "evaluate")
    }


def recipe_scale(base: Scale, recipe: dict[str, Any], *, full: bool) -> Scale:
    """``base``'s model sizes with the recipe's geometry, groups and lengths (``full``: the paper's clip
    geometry and UMT5-XXL; otherwise the smoke's own small clip)."""
    grpo_vlm, grpo_vdm, sft = recipe["grpo_vlm"], recipe["grpo_vdm"], recipe["sft"]
    changes: dict[str, Any] = {
        "lora_vlm": grpo_vlm.lora,
        "lora_vdm": grpo_vdm.lora,
        "group": grpo_vdm.grpo.group_size if full else base.group,
    }
    if full:
        clip = recipe["ingest"].clip
        changes.update(
            frames=clip.target_frames,
            height=clip.height,
            width=clip.width,
            context_frames=sft.vdm.conditioning.context_frames,
            max_new_tokens=grpo_vlm.sampling.max_new_tokens,
            sde_steps=grpo_vdm.sde.num_steps,
            eval_batch=recipe["evaluate"].batch_size,
            text_max_length=sft.vdm.conditioning.text_max_length,
            text_encoder=UMT5_XXL,
            text_vocab_size=UMT5_VOCAB,
        )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------------------------- models
@dataclasses.dataclass(frozen=True)
class Plan:
    """What the steps are built from: model sizes and geometry, the recipe's sections, the SFT batches,
    and whether the weights are fake (``mode``: built on the meta device, then swapped) or real."""

    scale: Scale
    recipe: dict[str, Any]
    sft_vlm_batch: int | None = None  # None: the recipe's trainer.batch_size (small plans set their own)
    sft_vdm_batch: int | None = None
    mode: ShapeOnlyMode | None = None
    real_device: str = "cpu"  # where real (not fake) steps run: "cpu", or "cuda" for --measure-device

    @property
    def device(self) -> torch.device:
        return torch.device("meta" if self.mode is not None else self.real_device)

    def autocast(self) -> torch.autocast:
        """``bf16-mixed``: autocast to bf16 (fake weights live on the CPU device)."""
        return torch.autocast("cuda" if self.device.type == "cuda" else "cpu", dtype=torch.bfloat16)

    def weights(self, *modules: torch.nn.Module) -> None:
        """Make ``modules``' weights fake (after adapters and frozen flags are set)."""
        if self.mode is not None:
            for module in modules:
                fake_weights(module, self.mode)

    def trained(self, module: torch.nn.Module, trainer: Any) -> torch.optim.AdamW:
        """AdamW over ``module``'s trainable weights, activation checkpointing switched on first when the
        stage's ``trainer`` section asks for it."""
        if trainer.activation_checkpointing:
            checkpoint_module(module)
        return self.adamw(trainable(module))

    def adamw(self, params: list[torch.nn.Parameter]) -> torch.optim.AdamW:
        """AdamW over ``params`` with its state already made (as from the second training step on)."""
        optimizer = torch.optim.AdamW(params, lr=1e-5)
        with self.mode if self.mode is not None else contextlib.nullcontext():
            for p in params:
                p.grad = torch.zeros_like(p)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return optimizer


def models(plan: Plan, *, vlm_lora: bool, vdm_lora: bool, full_vdm: bool = False):
    """The models of one step in their loaders' dtypes, frozen but for the LoRA adapters (and the whole
    transformer with ``full_vdm``), their weights fake when the plan says so."""
    vlm, vdm = build_models(plan.scale, plan.device, adapters=False)
    vlm.model.to(torch.bfloat16)
    vdm.text_encoder.to(torch.bfloat16)
    for module in (vlm.model, vdm.transformer, vdm.vae, vdm.text_encoder):
        module.requires_grad_(False)
    if vlm_lora:
        vlm.add_lora(plan.scale.lora_vlm, seed=0)
    if vdm_lora:
        vdm.add_lora(plan.scale.lora_vdm, seed=0)
    vdm.transformer.requires_grad_(full_vdm) if full_vdm else None
    plan.weights(vlm.model, vdm.transformer, vdm.vae, vdm.text_encoder)
    return vlm, vdm


def trainable(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def generate_full_length(
    self: VisionLanguageModel,
    videos: Any,
    questions: Any,
    *,
    max_new_tokens: int = 64,
    num_return_sequences: int = 1,
    **_: Any,
) -> Generation:
    """Stand-in for :meth:`VisionLanguageModel.generate` (module docstring): a forward over the prompts
    plus ``max_new_tokens`` tokens with the KV cache, and a Generation of that length."""
    device = next(self.model.parameters()).device
    inputs = {k: v.to(device) for k, v in self.batch(list(videos), list(questions)).items()}
    prompt = inputs["input_ids"].repeat_interleave(num_return_sequences, dim=0)
    first_word = max(self.vision_token_ids) + 1
    completion = torch.randint(first_word, len(self.tokenizer), (prompt.shape[0], max_new_tokens)).to(device)
    sequences = torch.cat([prompt, completion], dim=1)
    vision = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    vision = {
        k: v.repeat_interleave(num_return_sequences, dim=0)
        if k != "pixel_values_videos"
        else torch.cat([v] * num_return_sequences)
        for k, v in vision.items()
    }
    with torch.no_grad():
        self.model(
            **vision,
            input_ids=sequences,
            attention_mask=torch.ones_like(sequences),
            use_cache=True,
            logits_to_keep=1,
        )
    texts = [self.tokenizer.decode(row) for row in completion]
    return Generation(texts, sequences, prompt.shape[1], torch.ones_like(completion))


# ----------------------------------------------------------------------------------------------- steps
Step = tuple[Callable[[], None], list[Any]]


def context_clips(scale: Scale, count: int) -> tuple[np.ndarray, list[str]]:
    """``count`` context clips and questions at the step's geometry (4 of the world's, repeated)."""
    contexts, questions = world_clips(scale, min(count, 4))
    rows = [k % len(questions) for k in range(count)]
    return contexts[rows], [questions[k] for k in rows]


def long_text(tokens: int, sentences: list[str]) -> str:
    """About ``tokens`` word tokens: the world's words repeated."""
    words = " ".join(sentences).split()
    return " ".join(itertools.islice(itertools.cycle(words), tokens))


def sft_vlm_step(plan: Plan) -> Step:
    params = plan.recipe["sft"].vlm
    vlm, _ = models(plan, vlm_lora=True, vdm_lora=False)
    optimizer = plan.trained(vlm.model, params.trainer)
    n = plan.sft_vlm_batch or params.trainer.batch_size
    contexts, questions = context_clips(plan.scale, n)
    answer = long_text(plan.scale.max_new_tokens, questions)
    batch = {"context": contexts, "question": questions, "reasoning": [answer] * n, "caption": [answer] * n}
    module = VLMSFTModule(vlm, params.optim)
    if plan.mode is None:
        module.to(plan.device)  # the module moves its inputs to its own device
    vlm.model.train()

    def step() -> None:
        with plan.autocast():
            loss = module._loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, [vlm.model, optimizer]


def sft_vdm_step(plan: Plan) -> Step:
    params = plan.recipe["sft"].vdm
    full = params.finetune == "full"
    _, vdm = models(plan, vlm_lora=False, vdm_lora=not full, full_vdm=full)
    optimizer = plan.trained(vdm.transformer, params.trainer)
    contexts, questions = context_clips(plan.scale, plan.sft_vdm_batch or params.trainer.batch_size)
    targets = np.repeat(contexts[:, -1:], plan.scale.frames, axis=1)
    captions = [long_text(plan.scale.text_max_length, questions)] * len(questions)
    vdm.transformer.train()

    def step() -> None:
        with plan.autocast():
            loss = vdm.flow_matching_loss(targets, contexts, captions, torch.Generator().manual_seed(0))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, [vdm.transformer, vdm.vae, vdm.text_encoder, optimizer]


def stage1_step(plan: Plan) -> Step:
    params, scale = plan.recipe["grpo_vlm"], plan.scale
    vlm, vdm = models(plan, vlm_lora=True, vdm_lora=False)
    optimizer = plan.trained(vlm.model, params.trainer)
    G = scale.group
    grpo = dataclasses.replace(params.grpo, group_size=G, max_completion_length=scale.max_new_tokens)
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=scale.max_new_tokens)
    contexts, questions = context_clips(scale, 1)
    batch = {"context": contexts, "question": questions}
    advantages, keep = torch.linspace(-1, 1, G), torch.ones(G)

    def step() -> None:
        with plan.autocast(), mock.patch.object(VisionLanguageModel, "generate", generate_full_length):
            completions = sample_completions(vlm, batch, grpo, sampling, seed=0)
            render(vdm, completions.captions, contexts, frames=scale.frames, num_steps=2, seed=0, repeats=G)
            vlm.model.train()
            loss, _ = token_policy_loss(vlm, completions, advantages, keep, grpo, sampling)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, [vlm.model, vdm.transformer, vdm.vae, vdm.text_encoder, optimizer]


def stage2_step(plan: Plan) -> Step:
    params, scale = plan.recipe["grpo_vdm"], plan.scale
    _, vdm = models(plan, vlm_lora=False, vdm_lora=True)
    optimizer = plan.trained(vdm.transformer, params.trainer)
    G = scale.group
    grpo = dataclasses.replace(params.grpo, group_size=G)
    sde = dataclasses.replace(params.sde, num_steps=scale.sde_steps, keep_graphs=False)
    micro = params.micro_batch_size
    contexts, questions = context_clips(scale, 1)
    advantages, keep = torch.linspace(-1, 1, G), torch.ones(G)

    def step() -> None:
        with plan.autocast():
            sampled = sample_trajectories(
                vdm,
                [f"{questions[0]} {k}" for k in range(G)],
                np.repeat(contexts, G, axis=0),
                scale.frames,
                sde,
                torch.Generator().manual_seed(0),
            )
            vdm.transformer.train()
            losses = trajectory_losses(vdm, sampled, advantages, keep, grpo, sde, micro)
            pieces = -(-G // (micro or G))
            for loss, _ in itertools.islice(losses, 2 * pieces):  # the first two trained steps
                loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, [vdm.transformer, vdm.vae, vdm.text_encoder, optimizer]


def eval_step(plan: Plan) -> Step:
    scale = plan.scale
    vlm, vdm = models(plan, vlm_lora=False, vdm_lora=False)
    n = scale.eval_batch
    contexts, questions = context_clips(scale, n)

    def step() -> None:
        with plan.autocast(), torch.no_grad():
            with mock.patch.object(VisionLanguageModel, "generate", generate_full_length):
                answers = vlm.generate(list(contexts), questions, max_new_tokens=scale.max_new_tokens)
            render(vdm, answers.texts, contexts, frames=scale.frames, num_steps=2, seed=0, batch_size=n)

    return step, [vlm.model, vdm.transformer, vdm.vae, vdm.text_encoder]


BUILDERS: dict[str, Callable[[Plan], Step]] = {
    "sft_vlm": sft_vlm_step,
    "sft_vdm": sft_vdm_step,
    "stage1": stage1_step,
    "stage2": stage2_step,
    "eval_batch": eval_step,
}


def estimate(name: str, plan: Plan) -> tuple[MemoryBreakdown, float]:
    """The fake-tensor peak of step ``name`` and its FLOPs (torch's counter: matmuls and convolutions;
    it has no formula for the CPU's flash-attention kernel, so attention is left out)."""
    plan = dataclasses.replace(plan, mode=ShapeOnlyMode())
    step, tracked = BUILDERS[name](plan)
    counter = FlopCounterMode(display=False)
    peak = estimate_peak(step, tracked, plan.mode, counter)
    return peak, float(counter.get_total_flops())


def measure(name: str, plan: Plan) -> int:
    """The real peak of step ``name`` in bytes: on the CPU from the allocator's events (small plans
    only), on a GPU from ``torch.cuda.max_memory_allocated``."""
    torch.manual_seed(0)
    plan = dataclasses.replace(plan, mode=None)
    if plan.device.type != "cuda":
        return measure_peak(*BUILDERS[name](plan))
    torch.cuda.empty_cache()
    step, _ = BUILDERS[name](plan)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


#: The small configuration the estimate is checked on (real runs on this CPU): the smoke's sizes with a
#: wider, deeper transformer in both models, so the steps' memory is mostly what the estimate models
#: (weights, activations, gradients, optimiser state) rather than the CPU convolution kernels' own
#: workspace, which it does not count (module docstring).
CHECK = dataclasses.replace(
    SMOKE,
    wan={**SMOKE.wan, "num_attention_heads": 4, "attention_head_dim": 64, "ffn_dim": 1024, "num_layers": 8},
    vlm_text={
        **SMOKE.vlm_text,
        "hidden_size": 256,
        "num_attention_heads": 16,
        "intermediate_size": 1024,
        "num_hidden_layers": 6,
    },
    vlm_vision={**SMOKE.vlm_vision, "out_hidden_size": 256},
    group=4,
    max_new_tokens=128,
)


def without_memory_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe with activation checkpointing off in every stage and stage 2 back-propagating its whole
    group at once (what the memory settings are measured against)."""

    def plain(section: Any) -> Any:
        trainer = section.trainer
        trainer = dataclasses.replace(
            trainer,
            activation_checkpointing=False,
            batch_size=trainer.batch_size * trainer.accumulate_grad_batches,
            accumulate_grad_batches=1,
        )
        return section.model_copy(update={"trainer": trainer})

    sft = recipe["sft"].model_copy(update={"vlm": plain(recipe["sft"].vlm), "vdm": plain(recipe["sft"].vdm)})
    grpo_vdm = plain(recipe["grpo_vdm"]).model_copy(update={"micro_batch_size": None})
    return {**recipe, "sft": sft, "grpo_vlm": plain(recipe["grpo_vlm"]), "grpo_vdm": grpo_vdm}


def memory_settings(recipe: dict[str, Any], step: str) -> list[str]:
    """The memory settings the recipe turns on for ``step``."""
    sections = {
        "sft_vlm": [("sft.vlm", recipe["sft"].vlm)],
        "sft_vdm": [("sft.vdm", recipe["sft"].vdm)],
        "stage1": [("grpo_vlm", recipe["grpo_vlm"])],
        "stage2": [("grpo_vdm", recipe["grpo_vdm"])],
    }.get(step, [])
    settings = []
    for name, section in sections:
        trainer = section.trainer
        if trainer.activation_checkpointing:
            settings.append(f"{name}.trainer.activation_checkpointing")
        if trainer.accumulate_grad_batches > 1 and name.startswith("sft"):
            settings.append(
                f"{name}.trainer: batch_size {trainer.batch_size} x accumulate_grad_batches "
                f"{trainer.accumulate_grad_batches}"
            )
    if step == "stage2" and recipe["grpo_vdm"].micro_batch_size is not None:
        settings.append(f"grpo_vdm.micro_batch_size: {recipe['grpo_vdm'].micro_batch_size}")
    return settings


def table(rows: list[dict[str, Any]], limits: tuple[float, ...]) -> str:
    """A markdown table of the estimates, in GB (three decimals when every step is under 1 GB)."""
    parts = ("parameters", "gradients", "optimizer", "activations", "temporaries", "buffers", "other")
    head = ["step", *parts, "total GB", *(f"of {g:g} GB" for g in limits), "TFLOP", "memory settings"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    digits = 2 if any(row["bytes"] >= GB for row in rows) else 3
    for row in rows:
        gb = {name: value for name, value in row["bytes_by_part"].items()}
        cells = [row["step"], *(f"{gb[p] / GB:.{digits}f}" for p in parts), f"{row['bytes'] / GB:.{digits}f}"]
        cells += [f"{100 * row['bytes'] / GB / g:.0f} %" for g in limits]
        cells += [f"{row['tflops']:.1f}", ", ".join(row["settings"]) or "-"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def estimate_row(name: str, plan: Plan, suffix: str = "") -> dict[str, Any]:
    """One step's estimate as a table row (run in a worker process: plans and rows pickle)."""
    start = time.perf_counter()
    peak, flops = estimate(name, plan)
    seconds = time.perf_counter() - start
    print(
        f"  {name + suffix}: {peak.total / GB:.3f} GB, {flops / 1e12:.3f} TFLOP ({seconds:.0f} s)", flush=True
    )
    return {
        "step": name + suffix,
        "gb": peak.gigabytes(),
        "bytes": peak.total,
        "bytes_by_part": dataclasses.asdict(peak),
        "tflops": flops / 1e12,
        "settings": memory_settings(plan.recipe, name),
        "seconds": round(seconds, 1),
    }


def estimate_rows(steps: list[str], plan: Plan, suffix: str = "", workers: int = 1) -> list[dict[str, Any]]:
    """The steps' estimates, in ``workers`` processes (fake-tensor runs are single-threaded Python)."""
    longest_first = sorted(steps, key=lambda name: -SLOWEST.index(name) if name in SLOWEST else 0)
    rows = in_processes(estimate_row, [(name, plan, suffix) for name in longest_first], workers)
    by_name = dict(zip(longest_first, rows, strict=True))
    return [by_name[name] for name in steps]


def in_processes(run: Callable[..., Any], jobs: list[tuple[Any, ...]], workers: int) -> list[Any]:
    """``run(*job)`` for each job, in ``workers`` spawned processes (in this one for a single worker or
    job), submitted in the jobs' order; the results in that order."""
    if workers <= 1 or len(jobs) == 1:
        return [run(*job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(run, *job) for job in jobs]
        return [f.result() for f in futures]


def measure_rows(rows: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """Each estimated step of ``rows`` run for real on ``plan``'s device: its measured peak beside the
    estimate (on a GPU the CUDA context and kernel workspaces add to the measured figure)."""
    print(f"measured on {plan.real_device} vs estimated:")
    measured = []
    for row in rows:
        name = row["step"]
        if name not in BUILDERS:
            continue
        gc.collect()
        real = measure(name, plan)
        measured.append({"step": name, "measured_gb": real / GB, "estimated_gb": row["bytes"] / GB})
        print(
            f"  {name}: measured {real / GB:.2f} GB, estimated {row['bytes'] / GB:.2f} GB, "
            f"ratio {row['bytes'] / real:.3f}",
            flush=True,
        )
    return measured


def check_row(name: str, plan: Plan, suffix: str) -> dict[str, Any]:
    """One step's estimate and real peak at the small size (run in a worker process)."""
    estimated, real = estimate(name, plan)[0].total, measure(name, plan)
    return {
        "step": name + suffix,
        "estimated_mb": estimated / 1e6,
        "real_mb": real / 1e6,
        "ratio": estimated / real,
    }


def check(steps: list[str], recipe: dict[str, Any], workers: int = 1) -> tuple[list[dict[str, Any]], bool]:
    """Estimated vs real peaks of ``steps`` at the small CHECK size on this CPU, with the memory settings
    off (the estimate must agree within TOLERANCE) and, for steps that use activation checkpointing, on
    (printed: the estimate is an upper bound there, module docstring); whether any was outside."""
    print(f"estimate vs real peak on this CPU (small config, tolerance {TOLERANCE:.0%}):")
    checkpointed = [s for s in steps if any("activation" in x for x in memory_settings(recipe, s))]
    jobs = []
    for suffix, variant, names in (
        ("", without_memory_settings(recipe), steps),
        (" (activation checkpointing: upper bound)", recipe, checkpointed),
    ):
        plan = Plan(recipe_scale(CHECK, variant, full=False), variant, 2, 1)
        jobs += [(name, plan, suffix) for name in names]
    rows = in_processes(check_row, jobs, workers)
    failed = False
    for row in rows:
        outside = not row["step"].endswith("upper bound)") and abs(row["ratio"] - 1) > TOLERANCE
        failed |= outside
        print(
            f"  {row['step']}: estimated {row['estimated_mb']:.1f} MB, real {row['real_mb']:.1f} MB, "
            f"ratio {row['ratio']:.3f}" + ("  <-- outside the tolerance" if outside else "")
        )
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="shrunken models (what CI runs), with --check")
    parser.add_argument(
        "--check", action="store_true", help="also compare with real peaks on the small config"
    )
    parser.add_argument(
        "--compare-settings",
        action="store_true",
        help="also estimate the steps that use a memory setting without it (activation checkpointing off, "
        "stage 2's whole group at once)",
    )
    parser.add_argument(
        "--measure-device",
        default=None,
        help="also run every step for real at this size on this device (cuda: benchmarks/gpu_check.sh) and "
        "print its measured peak beside the estimate",
    )
    parser.add_argument(
        "--estimates",
        default=None,
        help="take the estimates from this --json file of an earlier run instead of estimating again",
    )
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes estimating steps at once"
    )
    parser.add_argument("--max-gb", type=float, default=None, help="fail naming every step over this")
    parser.add_argument(
        "--steps", default=",".join(STEPS), help="comma-separated subset of " + ", ".join(STEPS)
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"--steps: unknown {unknown}; choose from {', '.join(STEPS)}")
    recipe = paper_recipe()
    full = not args.smoke
    scale = recipe_scale(PAPER if full else SMOKE, recipe, full=full)
    plan = Plan(scale, recipe) if full else Plan(scale, recipe, 2, 1)
    print(f"{'paper recipe at full size' if full else 'smoke sizes'}: estimated peak per GPU (fake tensors)")
    if args.estimates:
        saved = {row["step"]: row for row in json.loads(Path(args.estimates).read_text())["estimates"]}
        rows = [saved[name] for name in steps]
        print(f"  (from {args.estimates})")
    else:
        rows = estimate_rows(steps, plan, workers=args.workers)
    if args.compare_settings:
        plain = dataclasses.replace(plan, recipe=without_memory_settings(recipe))
        rows += estimate_rows(
            [s for s in steps if memory_settings(recipe, s)],
            plan=plain,
            suffix=" (settings off)",
            workers=args.workers,
        )
    limits = (80.0, 141.0)
    print(table(rows, limits))
    result: dict[str, Any] = {"full_size": full, "estimates": rows}

    failed = False
    if args.check or args.smoke:
        result["check"], wrong = check(steps, recipe, args.workers)
        failed |= wrong
    if args.measure_device:
        result["measured"] = measure_rows(rows, dataclasses.replace(plan, real_device=args.measure_device))
    if args.max_gb is not None:
        over = [
            r["step"]
            for r in rows
            if r["bytes"] / GB > args.max_gb and not r["step"].endswith("(settings off)")
        ]
        if over:
            print(f"over {args.max_gb:g} GB per GPU: {', '.join(over)}")
            failed = True
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
