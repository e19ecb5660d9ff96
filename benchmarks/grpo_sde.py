"""Stage-2 rollout cost: Flow-GRPO SDE sampling with per-step log-probabilities against plain sampling of
the same tiny VDM (diffusers' FlowMatchEulerDiscreteScheduler, what ``VideoDiffusionModel.sample`` runs),
same prompts, noise and number of steps, measured side by side in one run.

    .venv/bin/python -m benchmarks.grpo_sde [--repeats 5] [--batch 16] [--steps 10] [--smoke] [--json F]

Both include text / context encoding and VAE decoding of the final latents. The SDE side also keeps the
whole latent chain (for the update) and the log-prob of every step, in float32. Target: sde / plain <= 1.15.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.figures import add_output_arguments, write_figures
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.models.wan_vae import to_uint8_video
from vans_pipelines.rl.flow_sde import SDEConfig, sample_sde
from vans_pipelines.world import render_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="clips per rollout (prompts x group size)")
    parser.add_argument("--steps", type=int, default=10)
    add_output_arguments(parser, smoke="1 repeat of 2 clips x 2 steps")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.batch, args.steps = 1, 2, 2

    world = render_split(0, "train", args.batch, context_frames=16, target_frames=16, height=32, width=32)
    captions = [t.caption for t in world]
    contexts = np.stack([t.context for t in world])
    vdm = build_tiny_vdm(
        build_word_tokenizer(captions), TinyVDMSpec(), Conditioning(context_frames=6), seed=0
    )
    for module in vdm.modules().values():
        module.eval()
    frames = 16

    def plain(seed: int) -> np.ndarray:
        return vdm.sample(captions, contexts, frames=frames, num_steps=args.steps, seed=seed)

    @torch.no_grad()
    def sde(seed: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(seed)
        noise, text, cond = vdm.prepare(captions, contexts, frames, 32, 32, generator)
        trajectory = sample_sde(
            lambda x, s: vdm.velocity(x, s, text, cond),
            noise,
            vdm.sigmas(args.steps),
            SDEConfig(num_steps=args.steps, noise_level=0.7),
            generator=generator,
        )
        assert trajectory.log_probs.shape == (args.batch, args.steps)
        return to_uint8_video(vdm.decode(trajectory.final))

    ways = {"plain": plain, "sde": sde}
    for fn in ways.values():  # warm-up
        fn(0)
    best = dict.fromkeys(ways, float("inf"))
    for r in range(args.repeats):
        for name, fn in ways.items():
            start = time.perf_counter()
            fn(r + 1)
            best[name] = min(best[name], time.perf_counter() - start)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.batch} clips x {args.steps} steps"
    )
    for name, seconds in best.items():
        print(f"{name:>6}: {seconds * 1000:8.1f} ms per rollout (best of {args.repeats})")
    ratio = best["sde"] / best["plain"]
    print(f"sde / plain = {ratio:.3f}  (target <= 1.15: {'met' if ratio <= 1.15 else 'NOT met'})")
    figures = {
        "clips": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "plain_seconds": best["plain"],
        "sde_seconds": best["sde"],
        "sde_over_plain": ratio,
    }
    write_figures(args.json, figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
