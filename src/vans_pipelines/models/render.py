"""Rendering answers with a frozen VDM: the one entry point for stage 1's rollouts, the val reports and the
evaluate stage. A render is an ODE sample (:meth:`VideoDiffusionModel.sample`) whose noise depends on a
seed and the prompt's position only, so two models or systems rendering the same prompts see the same
draw (paired comparisons)."""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence

import numpy as np
import torch

from vans_pipelines.models.dedup import first_occurrences
from vans_pipelines.models.vdm import VideoDiffusionModel

#: Clips already rendered by one frozen VDM, by (seed, render steps, frames, context digest, caption):
#: see :func:`render`.
RenderCache = MutableMapping[tuple[int, int, int, bytes, str], np.ndarray]


def eval_noise_seed(seed: int, start: int, draw: int = 0) -> int:
    """The sampling seed of the evaluation batch starting at sample ``start``, for eval seed ``seed`` and
    noise draw ``draw``: it depends on nothing else, so every model evaluated on the same samples sees
    the same noise and comparisons are paired. Distinct for batch starts below 10 007 and fewer than 10
    draws.

    >>> eval_noise_seed(1, 32), eval_noise_seed(1, 32, draw=2)
    (100035, 120049)
    """
    return seed * 100_003 + draw * 10_007 + start


def render(
    vdm: VideoDiffusionModel,
    captions: Sequence[str],
    contexts: np.ndarray,
    *,
    frames: int,
    num_steps: int,
    seed: int,
    repeats: int = 1,
    cache: RenderCache | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Clips (uint8 ``[N, T, H, W, 3]``) for ``captions``, grouped: ``repeats`` consecutive captions per
    context, sharing one noise draw. A caption repeated within its group has the same inputs and noise, so
    it is rendered once and its clip shared (sampled captions repeat often: about half a group's clips).

    ``cache``, shared by stage-1 runs that render with the same frozen VDM from the same prompts and seeds
    (the ablation's recipes of one training seed), keeps every clip: a later run that samples the same
    caption for the same context at the same step takes it from there (about 90% of them for the
    ablation's second and third stage-1 recipe), and by the evaluate stage's systems that share a VDM (a
    VLM's caption that equals the ground truth's is rendered once). Such a clip equals a fresh render up
    to float rounding of the batch it was rendered in.

    With ``batch_size``: ``batch_size`` contexts (and their captions) at a time, the VDM in eval mode,
    each batch's noise from ``seed`` and the batch's first context (:func:`eval_noise_seed`), as the
    evaluate stage renders a whole split."""
    captions = list(captions)
    settings = {"frames": frames, "num_steps": num_steps, "repeats": repeats, "cache": cache}
    if batch_size is None:
        return _render_batch(vdm, captions, contexts, seed=seed, **settings)
    for part in vdm.modules().values():
        part.eval()
    return np.concatenate(
        [
            _render_batch(
                vdm,
                captions[start * repeats : (start + batch_size) * repeats],
                contexts[start : start + batch_size],
                seed=eval_noise_seed(seed, start),
                **settings,
            )
            for start in range(0, len(contexts), batch_size)
        ]
    )


@torch.no_grad()
def _render_batch(
    vdm: VideoDiffusionModel,
    captions: list[str],
    contexts: np.ndarray,
    *,
    frames: int,
    num_steps: int,
    seed: int,
    repeats: int,
    cache: RenderCache | None,
) -> np.ndarray:
    shape = vdm.latent_shape(frames, *contexts.shape[2:4])
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(contexts), *shape), generator=generator).repeat_interleave(repeats, dim=0)
    keys = [(i // repeats, caption) for i, caption in enumerate(captions)]
    rows, index = first_occurrences(keys)  # the first sample of each distinct (context, caption)
    digests = [hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).digest() for c in contexts]
    cached = {} if cache is None else cache
    stored = [(seed, num_steps, frames, digests[keys[i][0]], keys[i][1]) for i in rows]
    missing = [k for k, key in enumerate(stored) if key not in cached]
    if missing:
        clips = vdm.sample(
            [captions[rows[k]] for k in missing],
            np.repeat(contexts, repeats, axis=0)[[rows[k] for k in missing]],
            frames=frames,
            num_steps=num_steps,
            noise=noise[[rows[k] for k in missing]],
        )
        cached.update({stored[k]: clip for k, clip in zip(missing, clips, strict=True)})
    rendered = np.stack([cached[key] for key in stored])
    return rendered[index.numpy()]
