"""The SFT VLM step with Qwen2.5-VL's vision attention as transformers runs it on a CPU (one SDPA call per
window) and packed into one batched call (``models/vision_attention.py``), side by side in one run.

    .venv/bin/python -m benchmarks.vlm_attention [--steps 10] [--smoke] [--json out.json]

The step is the embedded default's: the tiny Qwen2.5-VL of conf/base, a batch of 32 clips of 16 frames at
32x32 with a caption each, forward and backward. Both sides start from the same weights and must give the
same loss and gradients (the largest difference is printed); the ratio is of the median step times after
one warm-up step, taken in alternation so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.figures import write_figures
from benchmarks.stage_times import base_section
from vans_pipelines.models.tiny import build_tiny_vlm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.world import render_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="2 steps of 4 clips: the code runs (CI)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    steps, clips = (2, 4) if args.smoke else (args.steps, 32)

    world = list(render_split(0, "train", clips, context_frames=16, target_frames=16, height=32, width=32))
    tokenizer = build_word_tokenizer([t.caption for t in world] + ["What will happen next?"])
    spec = base_section("sft").vlm.tiny
    packed = build_tiny_vlm(tokenizer, spec, fps=8.0)
    batch = packed.batch(
        [t.context for t in world], ["What will happen next?"] * clips, [t.caption for t in world]
    )
    models = {"per_window": copy.deepcopy(packed.model), "packed": packed.model}
    models["per_window"].set_attn_implementation({"vision_config": "sdpa"})

    def step(model: torch.nn.Module) -> tuple[float, torch.Tensor, float]:
        model.train().zero_grad()
        start = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        seconds = time.perf_counter() - start
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return seconds, grads, float(loss.detach())

    times: dict[str, list[float]] = {name: [] for name in models}
    last: dict[str, tuple[torch.Tensor, float]] = {}
    for i in range(steps + 1):  # step 0 warms up
        for name, model in models.items():
            seconds, grads, loss = step(model)
            last[name] = (grads, loss)
            if i:
                times[name].append(seconds)
    median = {name: statistics.median(t) for name, t in times.items()}
    figures = {
        "per_window_seconds_per_step": median["per_window"],
        "packed_seconds_per_step": median["packed"],
        "packed_over_per_window": median["packed"] / median["per_window"],
        "max_gradient_difference": float((last["packed"][0] - last["per_window"][0]).abs().max()),
        "loss_difference": abs(last["packed"][1] - last["per_window"][1]),
        "clips_per_step": clips,
        "torch_threads": torch.get_num_threads(),
    }
    print(f"SFT VLM step, {clips} clips of 16x32x32, {steps} timed steps ({torch.get_num_threads()} threads)")
    print(f"  vision attention per window (transformers' SDPA path): {median['per_window']:.3f} s")
    print(f"  vision attention packed into one SDPA call:            {median['packed']:.3f} s")
    print(f"  packed / per window: {figures['packed_over_per_window']:.2f}")
    print(f"  largest gradient difference {figures['max_gradient_difference']:.2e}")
    write_figures(args.json, {"steps": steps, **figures}, smoke=args.smoke)


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
