"""The fast paths through the Wan VAE (``models/wan_vae.py``: single-frame convolutions, the RMS norm as a
sum of squares) against diffusers' own classes, on the tiny default VAE, measured side by side in one run:
frame-folded decode of generated clips, encode of frames, and one VAE-fit training step (encode + decode +
backward).

    .venv/bin/python -m benchmarks.wan_vae [--repeats 5] [--clips 32] [--smoke] [--json out.json]

Prints the seconds of each and the ratio fast / diffusers (lower is better), and the largest output
difference (float rounding only).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm

from benchmarks.figures import add_output_arguments, write_figures
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.models.wan_vae import SingleFrameCausalConv3d, SumOfSquaresRMSNorm


def best_of(repeats: int, fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clips", type=int, default=32, help="clips of 16 frames, 32x32")
    add_output_arguments(parser, smoke="1 repeat on 2 clips")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.clips = 1, 2

    vdm = build_tiny_vdm(build_word_tokenizer(["a red circle falls."]), TinyVDMSpec(), Conditioning(), seed=0)
    fast = vdm.vae
    plain = copy.deepcopy(fast)
    diffusers_classes = {SingleFrameCausalConv3d: WanCausalConv3d, SumOfSquaresRMSNorm: WanRMS_norm}
    for module in plain.modules():
        if type(module) in diffusers_classes:
            module.__class__ = diffusers_classes[type(module)]
    torch.manual_seed(0)
    latents = torch.randn(args.clips * 16, fast.config.z_dim, 1, 8, 8)
    frames = torch.rand(args.clips * 16, 3, 1, 32, 32) * 2 - 1
    fit_frames = frames[:32]

    def decode(vae):
        with torch.no_grad():
            return vae.decode(latents).sample

    def encode(vae):
        with torch.no_grad():
            return vae.encode(frames).latent_dist.mode()

    def fit_step(vae):
        vae.zero_grad()
        torch.manual_seed(0)  # the same posterior sample on both sides
        recon = vae.decode(vae.encode(fit_frames).latent_dist.sample()).sample
        loss = (recon - fit_frames).abs().mean()
        loss.backward()
        return loss.detach()

    print(f"tiny Wan VAE, {args.clips} clips x 16 frames of 32x32, best of {args.repeats}")
    print(f"{'pass':<28}{'diffusers s':>12}{'fast s':>10}{'ratio':>8}{'max |diff|':>12}")
    figures = {"clips": args.clips, "repeats": args.repeats}
    for key, name, fn in (
        ("decode", f"decode {args.clips * 16} frames", decode),
        ("encode", f"encode {args.clips * 16} frames", encode),
        ("fit_step", f"VAE-fit step ({len(fit_frames)} frames)", fit_step),
    ):
        t_plain, out_plain = best_of(args.repeats, lambda fn=fn: fn(plain))
        t_fast, out_fast = best_of(args.repeats, lambda fn=fn: fn(fast))
        diff = float((out_plain - out_fast).abs().max())
        print(f"{name:<28}{t_plain:>12.3f}{t_fast:>10.3f}{t_fast / t_plain:>8.2f}{diff:>12.1e}")
        figures[key] = {
            "diffusers_seconds": t_plain,
            "fast_seconds": t_fast,
            "fast_over_diffusers": t_fast / t_plain,
            "max_abs_difference": diff,
        }
    write_figures(args.json, figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
