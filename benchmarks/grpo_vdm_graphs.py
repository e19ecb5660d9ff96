"""Stage-2 GRPO step with and without ``sde.keep_graphs``, measured side by side in one run: a rollout
(SDE sampling of every clip, VAE decode) and ``num_iterations`` updates (reference means once, policy
log-probs, backward per trained step) on the embedded default's VDM with a LoRA adapter, the default run's
shapes (4 prompts x group 8, 16 frames of 32x32, 10 steps, the first 4 trained).

    .venv/bin/python -m benchmarks.grpo_vdm_graphs [--repeats 3] [--iterations 2] [--smoke] [--json out.json]

Kept graphs let the first update skip the policy's forward pass on the trained steps. Both sides must end
with the same adapter (checked); the ratio is the saving. Rewards are replaced by fixed advantages: they
cost the same on both sides.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

import numpy as np
import torch

from benchmarks.figures import add_output_arguments, write_figures
from benchmarks.stage_times import base_section
from vans_pipelines.models.lora import LoraSpec
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
    parser.add_argument("--iterations", type=int, default=2, help="updates per rollout (num_iterations)")
    add_output_arguments(parser, smoke="1 repeat of 2 prompts x group 2, 4 steps")
    args = parser.parse_args()

    prompts, group, steps, trained = (2, 2, 4, 2) if args.smoke else (4, 8, 10, 4)
    if args.smoke:
        args.repeats = 1
    world = render_split(0, "train", prompts, context_frames=16, target_frames=16, height=32, width=32)
    captions = [t.caption for t in world for _ in range(group)]
    contexts = np.repeat(np.stack([t.context for t in world]), group, axis=0)
    base = build_tiny_vdm(
        build_word_tokenizer(captions),
        base_section("sft").vdm.tiny,  # the embedded default's DiT
        Conditioning(context_frames=6, repeat_last_frame=True),
        seed=0,
    )
    base.start_adapter(LoraSpec(rank=8, alpha=32, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    grpo = GRPOConfig(group_size=group, num_iterations=args.iterations, beta=0.01)
    sde = SDEConfig(num_steps=steps, noise_level=0.7, window_end=trained, kl_form="exact")
    advantages = torch.linspace(-1, 1, len(captions))
    keep = torch.ones(len(captions), dtype=torch.bool)

    def step(vdm, optimizer, config: SDEConfig, seed: int) -> None:
        sampled = sample_trajectories(
            vdm, captions, contexts, 16, config, torch.Generator().manual_seed(seed)
        )
        for _ in range(args.iterations):
            optimizer.zero_grad()
            for loss, _ in trajectory_losses(vdm, sampled, advantages, keep, grpo, config):
                loss.backward()
            optimizer.step()

    ways = {"re-run": replace(sde, keep_graphs=False), "kept": replace(sde, keep_graphs=True)}
    models = {name: copy.deepcopy(base) for name in ways}
    optimizers = {
        name: torch.optim.AdamW([p for p in m.transformer.parameters() if p.requires_grad], lr=2.5e-4)
        for name, m in models.items()
    }
    best = dict.fromkeys(ways, float("inf"))
    for r in range(args.repeats + 1):  # the first round warms up
        for name, config in ways.items():
            start = time.perf_counter()
            step(models[name], optimizers[name], config, r)
            if r:
                best[name] = min(best[name], time.perf_counter() - start)
    a, b = (m.transformer.state_dict() for m in models.values())
    same = all(torch.equal(a[k], b[k]) for k in a)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(captions)} clips x "
        f"{sde.num_steps} steps ({len(sde.sde_steps)} trained), {args.iterations} update(s) per rollout"
    )
    for name, seconds in best.items():
        print(f"{name:>7}: {seconds:6.2f} s per rollout and its updates (best of {args.repeats})")
    print(f"kept / re-run = {best['kept'] / best['re-run']:.3f}; same adapter after every step: {same}")
    figures = {
        "clips": len(captions),
        "steps": sde.num_steps,
        "trained_steps": len(sde.sde_steps),
        "iterations": args.iterations,
        "rerun_seconds": best["re-run"],
        "kept_seconds": best["kept"],
        "kept_over_rerun": best["kept"] / best["re-run"],
        "same_adapter": same,
    }
    write_figures(args.json, figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
