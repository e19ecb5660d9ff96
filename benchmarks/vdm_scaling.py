"""How far is the embedded default's VDM from solving its world? Oracle event accuracy of the SFT
transformer given the ground-truth caption (what ``truth_caption_sft_vdm`` measures), against training
steps, model size and train episodes, on the val split.

    .venv/bin/python -m benchmarks.vdm_scaling [--project DIR] [--steps 800,1600] \
        [--layouts old,old+shift12] [--episodes 4096] [--params sft.vdm.optim.lr=1e-3] \
        [--guidance 1,2] [--smoke] [--json rows.json] > /dev/null

Needs a project that has run ``kedro run --pipelines ingest,caption`` (default: this one). The VAE is
fitted once with the project's ``sft.vdm`` settings and the train latents cached, as the SFT node does;
then the transformer is trained from scratch for every (layout, episodes, steps) and sampled from the
val captions and contexts. Nothing is written to the project. It prints one row per run (to stderr):
parameters, steps, training seconds, flow loss, guidance scale, val pixel MSE against the still frame's,
oracle event and kind accuracy, so the curve says what accuracy a training second buys on this machine
and which recipe buys most. A layout is a recipe (``LAYOUTS``: overrides of ``sft.vdm``); ``a+b``
applies both in order, so ``old+shift12`` is the pre-issue-29 recipe with the time shift 12.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from omegaconf import OmegaConf

from benchmarks.figures import add_output_arguments, write_figures
from benchmarks.stage_times import ROOT, SMOKE
from benchmarks.training_seeds import parse_params
from vans_pipelines.models.tiny import build_tiny_vdm
from vans_pipelines.params import VDMParams, parse_section
from vans_pipelines.samples import TripletSamples, captions_by_id
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.trainer import RunPaths, fit
from vans_pipelines.training.vdm_sft import (
    LatentSamples,
    collate_latents,
    encode_latents,
    evaluate_vdm,
    fit_vae,
    transformer_training,
)

#: Recipes the curve compares: overrides of the project's ``sft.vdm`` section. ``old`` is the default
#: before issue 29 (width 128, no time shift: uniform noise levels in training, an even sampling
#: schedule, 800 steps unless ``--steps`` says otherwise).
OLD = {
    "tiny": {"patch_size": [1, 4, 4], "num_heads": 4, "ffn_dim": 256},
    "conditioning": {"shift": 1.0},
    "flow_matching": {"scheme": "uniform"},
    "ema": {"decay": None},
}
LAYOUTS: dict[str, dict[str, Any]] = {
    "default": {},
    "old": OLD,
    "width64": {"tiny": {"num_heads": 2, "ffn_dim": 128}},
    "width128": {"tiny": {"num_heads": 4, "ffn_dim": 256}},
    "width192": {"tiny": {"num_heads": 6, "ffn_dim": 384}},
    "width256": {"tiny": {"num_heads": 8, "ffn_dim": 512}},
    "deep4": {"tiny": {"num_layers": 4}},
    "patch222": {"tiny": {"patch_size": [2, 2, 2]}},
    "patch244": {"tiny": {"patch_size": [2, 4, 4]}},
    "uniform": {"flow_matching": {"scheme": "uniform"}},
    "logit_normal": {"flow_matching": {"scheme": "logit_normal"}},
    "no_ema": {"ema": {"decay": None}},
    "ema995": {"ema": {"decay": 0.995}},
    "ema998": {"ema": {"decay": 0.998}},
    "cfg": {"flow_matching": {"caption_dropout": 0.1}},
    "stratified": {"flow_matching": {"scheme": "stratified"}},
    "prefix": {"conditioning": {"context_slots": "prefix"}},
    "compiled": {"compile": True},
    "batch32": {"trainer": {"batch_size": 32}},
    "lr8e-3": {"optim": {"lr": 8.0e-3}},
    "constant_lr": {"optim": {"schedule": "constant"}},
    "shift3": {"conditioning": {"shift": 3.0}},
    "shift5": {"conditioning": {"shift": 5.0}},
    "shift8": {"conditioning": {"shift": 8.0}},
    "shift12": {"conditioning": {"shift": 12.0}},
    "shift16": {"conditioning": {"shift": 16.0}},
    "high_noise": {"flow_matching": {"scheme": "logit_normal", "logit_mean": 1.0}},
}


def vdm_params(project_params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The project's ``sft`` section with ``--params`` overrides (``sft.vdm....`` keys) merged in."""
    sft = OmegaConf.merge(
        OmegaConf.create(copy.deepcopy(project_params["sft"])), OmegaConf.create(overrides.get("sft", {}))
    )
    return OmegaConf.to_container(sft)


def with_layout(sft: dict[str, Any], layout: str, steps: int) -> VDMParams:
    """``sft.vdm`` with the transformer layout ``layout`` and ``steps`` training steps."""
    merged = OmegaConf.create(copy.deepcopy(sft))
    for part in layout.split("+"):  # "patch244+logit_normal": both, in that order
        if part not in LAYOUTS:
            raise ValueError(f"--layouts: unknown layout {part!r}; known: {sorted(LAYOUTS)}")
        merged = OmegaConf.merge(merged, {"vdm": LAYOUTS[part]})
    merged.vdm.trainer.max_steps = steps
    return parse_section("sft", OmegaConf.to_container(merged)).vdm


def train_and_measure(
    params: VDMParams,
    vae: Any,
    tokenizer: Any,
    latents: LatentSamples,
    val: TripletSamples,
    paths: RunPaths,
    guidance: Sequence[float | None] = (None,),
) -> list[dict[str, Any]]:
    """Train a fresh transformer (and text encoder) on cached latents; sample val from the truth captions,
    once per guidance scale in ``guidance`` (None: the recipe's ``conditioning.guidance_scale``)."""
    vdm = build_tiny_vdm(tokenizer, params.tiny, params.conditioning, seed=params.trainer.seed)
    vdm.vae = vae
    module, run = transformer_training(
        vdm, params, paths.training("dit", f"scaling-{time.monotonic_ns()}"), log_samples=0
    )
    datamodule = SamplesDataModule(
        latents, params.trainer.batch_size, params.trainer.seed, collate_fn=collate_latents
    )
    result = fit(module, datamodule, params.trainer, run)
    for part in vdm.modules().values():
        part.eval()
    with torch.no_grad():
        batch = collate_latents([latents[i] for i in range(min(len(latents), 256))])
        x0 = batch["latents"]
        condition = vdm.context_condition(batch["context_latents"], x0.shape[2])
        flow_loss = float(
            vdm.latent_flow_matching_loss(x0, condition, batch["caption"], torch.Generator().manual_seed(0))
        )
    rows = []
    for scale in guidance:
        if scale is not None:
            vdm.conditioning = replace(vdm.conditioning, guidance_scale=scale)
        scores = evaluate_vdm(vdm, val, num_steps=params.eval.num_steps, limit=params.eval.limit, seed=0)
        rows.append(
            {
                "parameters": sum(p.numel() for p in vdm.transformer.parameters()),
                "seconds": result.seconds,
                "train_flow_loss": flow_loss,
                "guidance": vdm.conditioning.guidance_scale,
                **scores,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--steps", default="800,1600")
    parser.add_argument("--layouts", default="default")
    parser.add_argument("--episodes", default="", help="train episodes to use (default: all)")
    parser.add_argument("--params", default="", help="overrides, e.g. sft.vdm.optim.lr=1e-3")
    parser.add_argument("--guidance", default="", help="guidance scales to sample with, e.g. 1,3")
    add_output_arguments(parser, smoke="2 VAE-fit and 2 DiT steps, 2 val samples")
    args = parser.parse_args()
    if args.smoke:
        args.steps = "2"
    guidance = [float(g) for g in args.guidance.split(",") if g] or [None]
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    project = args.project.resolve()
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        catalog, project_params = context.catalog, context.params
        train_triplets, val_triplets = catalog.load("train_triplets"), catalog.load("val_triplets")
        captions, tokenizer = catalog.load("captions"), catalog.load("tokenizer")
    overrides = OmegaConf.merge({"sft": SMOKE["sft"]} if args.smoke else {}, parse_params(args.params))
    sft = vdm_params(project_params, OmegaConf.to_container(overrides))
    by_id = captions_by_id(captions)
    val = TripletSamples(val_triplets, by_id)
    steps = [int(s) for s in args.steps.split(",")]
    layouts = args.layouts.split(",")
    for layout in layouts:  # an unknown one is named before minutes of VAE fitting
        with_layout(sft, layout, steps[0])
    with tempfile.TemporaryDirectory(prefix="vans-vdm-scaling-") as tmp:
        paths = RunPaths(str(Path(tmp) / "tb"), str(Path(tmp) / "ckpt"), "scaling")
        base = with_layout(sft, "default", steps[0])
        vdm = build_tiny_vdm(tokenizer, base.tiny, base.conditioning, seed=base.trainer.seed)
        fit_vae(vdm, train_triplets, base.vae_fit, base.trainer, paths.training("vae", "scaling"))
        vae = vdm.vae
        all_latents = encode_latents(vdm, TripletSamples(train_triplets, by_id))
        episode_counts = [int(e) for e in args.episodes.split(",") if e] or [len(all_latents)]
        header = (
            f"{'layout':<12} {'params':>8} {'episodes':>8} {'steps':>6} {'seconds':>8} {'flow':>6} "
            f"{'cfg':>4} {'mse':>7} {'still':>7} {'event':>6} {'kind':>6}"
        )
        print(header, file=sys.stderr, flush=True)
        nan = float("nan")
        results: list[dict[str, Any]] = []
        for layout in layouts:
            for episodes in episode_counts:
                n = min(episodes, len(all_latents))
                subset = LatentSamples(
                    all_latents.captions[:n], all_latents.latents[:n], all_latents.context_latents[:n]
                )
                for count in steps:
                    params = with_layout(sft, layout, count)
                    for row in train_and_measure(params, vae, tokenizer, subset, val, paths, guidance):
                        print(
                            f"{layout:<12} {row['parameters']:>8} {n:>8} {count:>6} "
                            f"{row['seconds']:>8.0f} {row['train_flow_loss']:>6.3f} {row['guidance']:>4g} "
                            f"{row['pixel_mse']:>7.4f} {row['still_baseline_pixel_mse']:>7.4f} "
                            f"{row.get('oracle_event_accuracy', nan):>6.3f} "
                            f"{row.get('oracle_kind_accuracy', nan):>6.3f}",
                            file=sys.stderr,
                            flush=True,
                        )
                        results.append({"layout": layout, "episodes": n, "steps": count, **row})
                        write_figures(args.json, {"rows": results}, smoke=args.smoke)  # each row as it comes


if __name__ == "__main__":
    main()
