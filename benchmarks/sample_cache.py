"""The SFT VLM's training step with its clips read from storage every time and kept in memory once read
(``run.sample_cache_mb``), side by side in one run.

    .venv/bin/python -m benchmarks.sample_cache [--steps 20] [--smoke] [--json out.json]

The clips are the embedded default's train split as ingest stores it (one compressed npz file per
triplet), written to a temporary folder from the project's own world: 4096 episodes of 16 + 16 frames at
32x32 (``--smoke``: 64). A step is what the SFT VLM does for each batch of 32: read the items, collate
them, build the model inputs, forward, backward and an AdamW step on the conf/base tiny Qwen2.5-VL. The
cached side has read the split once before (the steady state of the 16 epochs of the default's 2000
steps); both sides draw the same batches, taken in alternation so that both see the same machine load,
and the ratio is of the median step times.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.figures import write_figures
from benchmarks.stage_times import base_section
from vans_pipelines.datasets import TripletDataset
from vans_pipelines.models.answer_format import format_answer
from vans_pipelines.models.tiny import build_tiny_vlm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.samples import TripletSamples, collate
from vans_pipelines.world import render_split

BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="64 episodes, 2 steps: the code runs (CI)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    episodes, steps = (64, 2) if args.smoke else (4096, args.steps)

    with tempfile.TemporaryDirectory(prefix="vans-sample-cache-") as tmp:
        world = render_split(0, "train", episodes, context_frames=16, target_frames=16, height=32, width=32)
        store = TripletDataset(path=str(Path(tmp) / "train"), clip_format="npz")
        store.save(world)
        split = store.load()
        samples = {"storage": TripletSamples(split), "memory": TripletSamples(split, cache_mb=1024)}
        started = time.perf_counter()
        for i in range(len(samples["memory"])):  # the first epoch: what fills the cache
            samples["memory"][i]
        warm_seconds = time.perf_counter() - started

        captions = list(split.index["caption"])
        tokenizer = build_word_tokenizer([*captions, *split.index["question"]])
        vlm = build_tiny_vlm(tokenizer, base_section("sft").vlm.tiny, fps=8.0)
        optimiser = torch.optim.AdamW(vlm.model.parameters(), lr=1e-4)
        order = np.random.default_rng(0).permutation(len(split))

        def step(items: TripletSamples, start: int) -> float:
            began = time.perf_counter()
            rows = [int(order[(start + k) % len(order)]) for k in range(BATCH)]
            batch = collate([items[i] for i in rows])
            answers = [format_answer(r, c) for r, c in zip(batch["reasoning"], batch["caption"], strict=True)]
            inputs = vlm.batch(list(batch["context"]), batch["question"], answers)
            optimiser.zero_grad()
            vlm.model(**inputs).loss.backward()
            optimiser.step()
            return time.perf_counter() - began

        times: dict[str, list[float]] = {name: [] for name in samples}
        for k in range(steps + 1):  # step 0 warms up
            for name, items in samples.items():
                seconds = step(items, k * BATCH)
                if k:
                    times[name].append(seconds)

    median = {name: statistics.median(t) for name, t in times.items()}
    figures = {
        "storage_seconds_per_step": median["storage"],
        "memory_seconds_per_step": median["memory"],
        "memory_over_storage": median["memory"] / median["storage"],
        "first_epoch_read_seconds": warm_seconds,
        "episodes": episodes,
        "torch_threads": torch.get_num_threads(),
    }
    print(f"SFT VLM step, batches of {BATCH} from {episodes} npz triplets, {steps} timed steps each")
    print(f"  clips read from storage:         {median['storage']:.3f} s")
    print(f"  clips kept in memory once read:  {median['memory']:.3f} s")
    print(f"  memory / storage: {figures['memory_over_storage']:.2f}")
    print(f"  (the first epoch, which fills the cache, read the split in {warm_seconds:.1f} s)")
    write_figures(args.json, {"steps": steps, **figures}, smoke=args.smoke)


if __name__ == "__main__":
    main()
