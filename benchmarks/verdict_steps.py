"""Which denoising steps decide what the oracle reads? For each step k of the sampler, only step k is
stochastic (Flow-GRPO's SDE step): several draws per prompt from the same starting noise, and the share of
prompts whose oracle verdict differs between the draws. A step whose noise never changes a verdict gives
stage 2 nothing to credit there; the SDE window (``grpo_vdm.sde.window_start`` / ``window_end``) should
cover steps that do.

    .venv/bin/python -m benchmarks.verdict_steps [--project DIR] [--prompts 32] [--draws 4] \
        [--num-steps 10] [--noise-level 0.7] [--json rows.json] > /dev/null
    .venv/bin/python -m benchmarks.verdict_steps --smoke   # a tiny random VDM on a few world samples (CI)

Needs a project that has run the default pipeline up to ``grpo_vdm``'s anchors (its SFT VDM, the
anchor captions); it reads the first ``--prompts`` kept train anchors, as stage 2 trains on them. Nothing
is written to the project. One row per step (to stderr): the step's noise levels, the accuracy of the
draws and the share of prompts whose verdict flips.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.figures import write_figures
from vans_pipelines.metrics import oracle_event_scores
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.wan_vae import to_uint8_video
from vans_pipelines.rl.flow_sde import SDEConfig, sample_sde

ROOT = Path(__file__).resolve().parents[1]


def verdict_flips(
    vdm: VideoDiffusionModel,
    captions: Sequence[str],
    contexts: np.ndarray,
    events: Sequence[Any],
    frames: int,
    *,
    num_steps: int = 10,
    noise_level: float = 0.7,
    draws: int = 4,
    seed: int = 7,
) -> list[dict[str, float]]:
    """Per step k: the oracle accuracy of ``draws`` samples per prompt with only step k stochastic (same
    starting noise, the step's noise drawn per draw) and the share of prompts whose verdict flips."""
    rows = []
    sigmas = vdm.sigmas(num_steps)
    with torch.no_grad():
        height, width = contexts.shape[2:4]
        noise, text, cond = vdm.prepare(
            list(captions), contexts, frames, height, width, torch.Generator().manual_seed(seed)
        )
        for k in range(num_steps):
            sde = SDEConfig(num_steps=num_steps, noise_level=noise_level, window_start=k, window_end=k + 1)
            verdicts = np.zeros((draws, len(captions)))
            for m in range(draws):
                trajectory = sample_sde(
                    lambda x, s: vdm.velocity(x, s, text, cond),
                    noise,
                    sigmas,
                    sde,
                    generator=torch.Generator().manual_seed(1000 * seed + m),
                )
                clips = to_uint8_video(vdm.decode(trajectory.final))
                verdicts[m] = oracle_event_scores(list(clips), list(events))["event"]
            rows.append(
                {
                    "step": k,
                    "sigma": round(float(sigmas[k]), 4),
                    "sigma_next": round(float(sigmas[k + 1]), 4),
                    "accuracy": float(verdicts.mean()),
                    "verdict_flips": float(np.mean(verdicts.min(0) != verdicts.max(0))),
                }
            )
    return rows


Prompts = tuple[VideoDiffusionModel, list[str], np.ndarray, list, int]


def project_prompts(project: Path, count: int) -> Prompts:
    """The project's SFT VDM and its first ``count`` kept train anchors (captions, contexts, events) and
    the answers' frame count."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from vans_pipelines.pipelines.samples.nodes import make_samples
    from vans_pipelines.training.grpo_vdm import AnchoredSamples, anchors_of

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        catalog = context.catalog
        splits = (catalog.load(f"{split}_triplets") for split in ("train", "val", "test"))
        samples = make_samples(*splits, catalog.load("captions"), context.params["ingest"]["clip"]["fps"])
        anchors = anchors_of(catalog.load("anchor_captions"), "train", True)
        vdm = catalog.load("sft_vdm")
    train = AnchoredSamples(samples.train, dict(list(anchors.items())[:count]))
    items = [train[i] for i in range(len(train))]
    contexts = np.stack([item["context"] for item in items])
    frames = items[0]["target"].shape[0]
    return vdm, [item["anchor"] for item in items], contexts, [item["event"] for item in items], frames


def smoke_prompts() -> Prompts:
    """A tiny random VDM and four world samples with their true captions."""
    from vans_pipelines.models.conditioning import Conditioning
    from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
    from vans_pipelines.models.tokenizer import build_word_tokenizer
    from vans_pipelines.world import render_split

    triplets = render_split(0, "train", 4, context_frames=4, target_frames=4, height=16, width=16)
    captions = list(triplets.index["caption"])
    vdm = build_tiny_vdm(
        build_word_tokenizer(captions), TinyVDMSpec(), Conditioning(context_frames=2, text_max_length=16)
    )
    contexts = np.stack([t.context for t in triplets])
    return vdm, captions, contexts, list(triplets.index["event"]), 4


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--num-steps", type=int, default=10)
    parser.add_argument("--noise-level", type=float, default=0.7)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny random VDM, 4 world samples, 3 steps")
    args = parser.parse_args(argv)
    if args.smoke:
        vdm, captions, contexts, events, frames = smoke_prompts()
        args.num_steps, args.draws = 3, 2
    else:
        vdm, captions, contexts, events, frames = project_prompts(args.project, args.prompts)
    started = time.perf_counter()
    rows = verdict_flips(
        vdm,
        captions,
        contexts,
        events,
        frames,
        num_steps=args.num_steps,
        noise_level=args.noise_level,
        draws=args.draws,
    )
    seconds = time.perf_counter() - started
    print(f"{len(captions)} prompts, {args.draws} draws, {seconds:.0f} s", file=sys.stderr)
    for row in rows:
        print(
            f"  step {row['step']} (sigma {row['sigma']:.3f} -> {row['sigma_next']:.3f}): accuracy "
            f"{row['accuracy']:.3f}, verdicts that flip {row['verdict_flips']:.3f}",
            file=sys.stderr,
        )
    write_figures(args.json, {"prompts": len(captions), "draws": args.draws, "rows": rows}, smoke=args.smoke)


if __name__ == "__main__":
    main()
