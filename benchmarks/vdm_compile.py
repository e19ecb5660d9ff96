"""The VDM (transformer and VAE decoder) eager, through ``torch.compile`` (``VideoDiffusionModel.compile``,
what ``ablate.compile_vdm`` turns on) and eager under bfloat16 autocast (what ``bf16-mixed`` precision
runs), measured side by side in one run on the embedded default's DiT: a
stage-2 rollout with its updates (the default run's shapes: 4 prompts x group 8, 16 frames of 32x32, 10 SDE
steps, the first 4 trained, graphs kept, 2 updates) and an evaluation render (32 clips, 6 ODE steps).

    .venv/bin/python -m benchmarks.vdm_compile [--repeats 3] [--smoke] [--json out.json]

The first round of each side warms up (compiling happens there, and is reported); the ratio is of the best
of the rest. Compiled numbers equal eager ones up to float rounding, not bitwise: the largest difference of
the two adapters after the same steps is printed beside the times (and bf16's, which rounds far more). bf16
pays only where the CPU multiplies bfloat16 natively (AMX or AVX-512 BF16); elsewhere it is emulated.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time

import numpy as np
import torch

from benchmarks.figures import add_output_arguments, write_figures
from benchmarks.stage_times import base_section
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.render import render
from vans_pipelines.models.tiny import build_tiny_vdm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.training.grpo_vdm import sample_trajectories, trajectory_losses
from vans_pipelines.world import render_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_output_arguments(parser, smoke="1 repeat of 1 prompt x group 2, 2 SDE steps, 2 clips rendered")
    args = parser.parse_args()

    prompts, group, steps, trained, rendered = (1, 2, 2, 1, 2) if args.smoke else (4, 8, 10, 4, 32)
    if args.smoke:
        args.repeats = 1
    world = render_split(0, "train", rendered, context_frames=16, target_frames=16, height=32, width=32)
    world = list(world)
    captions = [t.caption for t in world[:prompts] for _ in range(group)]
    contexts = np.repeat(np.stack([t.context for t in world[:prompts]]), group, axis=0)
    eval_captions, eval_contexts = [t.caption for t in world], np.stack([t.context for t in world])
    base = build_tiny_vdm(
        build_word_tokenizer([t.caption for t in world]),
        base_section("sft").vdm.tiny,  # the embedded default's DiT
        Conditioning(context_frames=6, repeat_last_frame=True),
        seed=0,
    )
    base.start_adapter(LoraSpec(rank=8, alpha=32, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    grpo = GRPOConfig(group_size=group, num_iterations=2, beta=0.01)
    sde = SDEConfig(num_steps=steps, noise_level=0.7, window_end=trained, kl_form="exact", keep_graphs=True)
    advantages = torch.linspace(-1, 1, len(captions))
    keep = torch.ones(len(captions), dtype=torch.bool)

    def train_step(vdm, optimizer, seed: int) -> None:
        sampled = sample_trajectories(vdm, captions, contexts, 16, sde, torch.Generator().manual_seed(seed))
        for _ in range(grpo.num_iterations):
            optimizer.zero_grad()
            for loss, _ in trajectory_losses(vdm, sampled, advantages, keep, grpo, sde):
                loss.backward()
            optimizer.step()

    def evaluate(vdm, seed: int) -> None:
        render(vdm, eval_captions, eval_contexts, frames=16, num_steps=6, seed=seed, batch_size=rendered)

    models = {name: copy.deepcopy(base) for name in ("eager", "compiled", "bf16")}
    models["compiled"].compile()
    optimizers = {
        name: torch.optim.AdamW([p for p in m.transformer.parameters() if p.requires_grad], lr=2.5e-4)
        for name, m in models.items()
    }
    best = {(name, part): float("inf") for name in models for part in ("train", "eval")}
    first = {}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    for r in range(args.repeats + 1):  # the first round warms up (and compiles)
        for name, vdm in models.items():
            for part in ("train", "eval"):
                vdm.transformer.train(part == "train")
                start = time.perf_counter()
                with autocast if name == "bf16" else contextlib.nullcontext():
                    if part == "train":
                        train_step(vdm, optimizers[name], r)
                    else:
                        evaluate(vdm, r)
                seconds = time.perf_counter() - start
                if r:
                    best[name, part] = min(best[name, part], seconds)
                else:
                    first[name, part] = seconds
    eager_state = models["eager"].transformer.state_dict()

    def adapter_difference(name: str) -> float:
        """The largest difference of ``name``'s adapter weights from the eager model's."""
        state = models[name].transformer.state_dict()
        return max(float((eager_state[k] - state[k]).abs().max()) for k in eager_state if "lora_" in k)

    drift, bf16_drift = adapter_difference("compiled"), adapter_difference("bf16")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    figures: dict[str, object] = {
        "clips": len(captions),
        "rendered": rendered,
        "adapter_drift": drift,
        "bf16_adapter_drift": bf16_drift,
    }
    for part, what in (
        ("train", "stage-2 rollout + 2 updates"),
        ("eval", f"evaluation render, {rendered} clips"),
    ):
        eager, compiled, bf16 = (best[name, part] for name in models)
        warm_up = first["compiled", part]
        print(
            f"{what:>28}: eager {eager:5.2f} s, compiled {compiled:5.2f} s (first round {warm_up:.1f} s), "
            f"bf16 {bf16:5.2f} s; compiled / eager = {compiled / eager:.3f}, "
            f"bf16 / eager = {bf16 / eager:.3f}"
        )
        figures[part] = {
            "eager_seconds": eager,
            "compiled_seconds": compiled,
            "bf16_seconds": bf16,
            "first_round_seconds": warm_up,
            "compiled_over_eager": compiled / eager,
            "bf16_over_eager": bf16 / eager,
        }
    print(
        f"largest adapter difference after {args.repeats + 1} steps: "
        f"compiled {drift:.2e}, bf16 {bf16_drift:.2e}"
    )
    write_figures(args.json, figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
