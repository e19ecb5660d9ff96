"""Answer the test split with every system a run produced and score the answers with the paper's metrics.

A *system* is a VLM (which writes the caption) and optionally a VDM (which renders it with the context).
Captions are greedy, so text metrics do not depend on the seed; each evaluation seed draws new diffusion
noise, so video metrics are reported as mean and std over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from vans_pipelines.evaluation.features import VideoFeatures
from vans_pipelines.metrics import (
    bleu,
    caption_event_scores,
    clip_motion,
    frechet_distance,
    oracle_event_scores,
    rouge_l,
)
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.render import RenderCache, render
from vans_pipelines.models.scorer import VideoTextScorer, video_text_similarity, video_video_similarity
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.samples import ordered_batches
from vans_pipelines.world.events import Event


@dataclass(frozen=True)
class System:
    """``vlm`` / ``vdm`` name checkpoints of the run (``sft`` or ``grpo``); ``vdm=None`` answers in text.

    Two stand-ins are not models: ``vlm="truth"`` takes the ground-truth caption (the VDM alone is
    measured; such a system reads the answer, so it is shown but never ranked), and ``vdm="still"``
    holds the last context frame for the whole answer (the static-frame hack, the floor every video
    system must beat). Systems without a VLM of their own have no text metrics."""

    name: str
    label: str
    vlm: str | None
    vdm: str | None

    @property
    def writes_captions(self) -> bool:
        return self.vlm not in (None, "truth")

    @property
    def ranked(self) -> bool:
        return self.vlm != "truth"


SYSTEMS: tuple[System, ...] = (
    System("vlm_only", "VLM only (SFT VLM, text answer)", "sft", None),
    System("sft_cascade", "SFT cascade (SFT VLM -> SFT VDM)", "sft", "sft"),
    System("stage1_only", "Stage 1 only (GRPO VLM -> SFT VDM)", "grpo", "sft"),
    System("stage2_only", "Stage 2 only (SFT VLM -> GRPO VDM)", "sft", "grpo"),
    System("joint_grpo", "Joint-GRPO (GRPO VLM -> GRPO VDM)", "grpo", "grpo"),
    System("still_frame", "Still frame (last context frame held)", None, "still"),
    System("truth_caption_sft_vdm", "Ground-truth caption -> SFT VDM", "truth", "sft"),
    System("truth_caption_grpo_vdm", "Ground-truth caption -> GRPO VDM", "truth", "grpo"),
)

TEXT_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "caption_event_accuracy")
VIDEO_METRICS = (
    "fvd",
    "clip_v",
    "clip_t",
    "event_accuracy",
    "event_kind_accuracy",
    "motion",
    "still_similarity",
)
LOWER_IS_BETTER = frozenset({"fvd"})


def system_by_name(names: Sequence[str], key: str = "evaluate.systems") -> list[System]:
    """The systems named (in the order given); an unknown name is an error naming ``key``."""
    known = {s.name: s for s in SYSTEMS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{key}: unknown system(s) {unknown} (known: {', '.join(sorted(known))})")
    return [known[n] for n in names]


@torch.no_grad()
def answer_captions(
    vlm: VisionLanguageModel, reference: Reference, *, max_new_tokens: int, batch_size: int = 32
) -> pd.DataFrame:
    """The VLM's greedy answer to each sample: full completion, parsed reasoning and caption."""
    vlm.model.eval()
    rows = []
    for start in range(0, len(reference.sample_ids), batch_size):
        part = slice(start, start + batch_size)
        contexts = list(reference.contexts[part])
        texts = vlm.generate(contexts, reference.questions[part], max_new_tokens=max_new_tokens).texts
        for sample_id, text in zip(reference.sample_ids[part], texts, strict=True):
            answer = parse_answer(text)
            rows.append(
                {
                    "sample_id": sample_id,
                    "completion": text,
                    "reasoning": answer.reasoning,
                    "caption": answer.caption,
                    "well_formed": bool(answer.well_formed),
                }
            )
    return pd.DataFrame(rows, columns=["sample_id", "completion", "reasoning", "caption", "well_formed"])


def caption_metrics(
    predictions: Sequence[str], references: Sequence[str], events: Sequence[Any]
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """BLEU@1-4 (corpus, sacrebleu) and ROUGE-L (mean F1, rouge-score) of predicted captions; on the
    synthetic world also the share of captions that name exactly the ground-truth event. Returns the
    summary and per-sample ROUGE-L and event correctness (NaN without events)."""
    rouge = rouge_l(predictions, references)
    if all(Event.parse(e) is not None for e in events):
        event_ok = caption_event_scores(predictions, events)
    else:
        event_ok = np.full(len(predictions), np.nan)
    summary = {f"bleu_{n}": bleu(predictions, references, n) for n in range(1, 5)}
    summary["rouge_l"] = float(rouge.mean())
    summary["caption_event_accuracy"] = float(np.mean(event_ok))
    return summary, rouge, event_ok


@dataclass
class Reference:
    """The ground truth of the evaluated samples, loaded once."""

    sample_ids: list[str]
    questions: list[str]
    captions: list[str]
    events: list[Any]
    contexts: np.ndarray
    targets: np.ndarray

    @classmethod
    def of(cls, samples: Dataset, limit: int | None = None) -> Reference:
        parts: dict[str, list[Any]] = {}
        for _, batch in ordered_batches(samples, 64, limit):
            for key in ("sample_id", "question", "caption", "event", "context", "target"):
                parts.setdefault(key, []).extend(list(batch[key]))
        return cls(
            parts["sample_id"],
            parts["question"],
            parts["caption"],
            parts["event"],
            np.stack(parts["context"]),
            np.stack(parts["target"]),
        )


def video_metrics(
    videos: np.ndarray,
    reference: Reference,
    scorer: VideoTextScorer,
    features: VideoFeatures,
    reference_features: np.ndarray,
    batch_size: int = 64,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """FVD (Fréchet distance of ``features``), CLIP-V (vs the ground-truth clip), CLIP-T (vs the
    ground-truth caption), the oracle's event accuracy (exact event; event kind), motion, and the
    similarity under the scorer to the still-frame answer (the last context frame held: the static-frame
    hack scores 1)."""
    clip_v, clip_t, still, feats = [], [], [], []
    frames = videos.shape[1]
    for start in range(0, len(videos), batch_size):
        part = slice(start, start + batch_size)
        held = np.repeat(reference.contexts[part][:, -1:], frames, axis=1)
        clip_v.append(video_video_similarity(scorer, list(videos[part]), list(reference.targets[part])))
        clip_t.append(video_text_similarity(scorer, list(videos[part]), reference.captions[part]))
        still.append(video_video_similarity(scorer, list(videos[part]), list(held)))
        feats.append(features(list(videos[part])))
    per_sample = {
        "clip_v": torch.cat(clip_v).float().cpu().numpy(),
        "clip_t": torch.cat(clip_t).float().cpu().numpy(),
        "still_similarity": torch.cat(still).float().cpu().numpy(),
    }
    per_sample["motion"], overall_motion = clip_motion(videos)
    events = [Event.parse(e) for e in reference.events]
    if all(e is not None for e in events):
        oracle = oracle_event_scores(list(videos), events)
        per_sample["event"], per_sample["event_kind"] = oracle["event"], oracle["kind"]
    else:
        per_sample["event"] = per_sample["event_kind"] = np.full(len(videos), np.nan)
    summary = {
        "fvd": frechet_distance(np.concatenate(feats), reference_features),
        "clip_v": float(per_sample["clip_v"].mean()),
        "clip_t": float(per_sample["clip_t"].mean()),
        "event_accuracy": float(np.mean(per_sample["event"])),
        "event_kind_accuracy": float(np.mean(per_sample["event_kind"])),
        "motion": overall_motion,
        "still_similarity": float(per_sample["still_similarity"].mean()),
    }
    return summary, per_sample


@dataclass
class Evaluation:
    """What :func:`score_systems` measured."""

    summary: dict[str, Any]  # per system: label, checkpoints, metric -> {mean, std, per_seed}
    samples: pd.DataFrame  # one row per (system, seed, sample)
    answers: dict[str, np.ndarray]  # system -> seed-0 clips of the first ``keep_clips`` samples
    reference: Reference


def _spread(values: Sequence[float]) -> dict[str, Any]:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "per_seed": [round(float(v), 6) for v in values],
    }


def score_systems(
    systems: Sequence[System],
    vlms: Mapping[str, VisionLanguageModel],
    vdms: Mapping[str, VideoDiffusionModel],
    samples: Dataset,
    scorer: VideoTextScorer,
    features: VideoFeatures,
    *,
    seeds: Sequence[int],
    num_steps: int,
    max_new_tokens: int,
    batch_size: int = 32,
    limit: int | None = None,
    keep_clips: int = 4,
) -> Evaluation:
    """Every system on ``samples`` (read once): captions once per VLM, and per (VDM, seed) each distinct
    (sample, caption) rendered once. Systems sharing a VDM see the same noise per sample, so where
    their captions agree (a VLM that writes the ground truth, two VLMs that agree) the clip is the same
    and is shared (:func:`~vans_pipelines.models.render.render`'s cache) instead of rendered again."""
    if not seeds:
        raise ValueError("evaluate.seeds: give at least one seed")
    reference = Reference.of(samples, limit)
    reference_features = features(list(reference.targets))
    captions = {
        key: answer_captions(vlms[key], reference, max_new_tokens=max_new_tokens, batch_size=batch_size)
        for key in dict.fromkeys(s.vlm for s in systems if s.writes_captions)
    }
    texts = {s.name: _caption_figures(s, captions.get(s.vlm), reference, len(seeds)) for s in systems}
    scoring = {"scorer": scorer, "features": features, "reference_features": reference_features}
    rendering = {"frames": reference.targets.shape[1], "num_steps": num_steps, "batch_size": batch_size}
    videos = _video_figures(systems, vdms, texts, reference, seeds, rendering, scoring)
    summary: dict[str, Any] = {}
    rows: list[pd.DataFrame] = []
    answers: dict[str, np.ndarray] = {}
    for system in systems:
        metrics, base, _ = texts[system.name]
        if system.vdm is None:
            rows.append(base.assign(seed=np.nan))
        else:
            figures = videos[system.name]
            metrics = {**metrics, **{name: _spread(values) for name, values in figures.per_seed.items()}}
            rows.extend(figures.rows)
            answers[system.name] = figures.first[:keep_clips]
        summary[system.name] = _system_entry(system, metrics, captions.get(system.vlm))
    return Evaluation(summary, pd.concat(rows, ignore_index=True), answers, reference)


def _caption_figures(
    system: System, captions: pd.DataFrame | None, reference: Reference, num_seeds: int
) -> tuple[dict[str, Any], pd.DataFrame, list[str] | None]:
    """A system's caption metrics (the same for every seed: captions are greedy), its per-sample rows so
    far, and the captions its VDM renders (the ground truth's for the ``truth`` VLM)."""
    base = pd.DataFrame(
        {"system": system.name, "sample_id": reference.sample_ids, "question": reference.questions}
    )
    base["truth"] = reference.captions
    if not system.writes_captions:
        return {}, base, reference.captions if system.vlm == "truth" else None
    predicted = captions["caption"].tolist()
    text, rouge, caption_event = caption_metrics(predicted, reference.captions, reference.events)
    metrics = {name: _spread([value] * num_seeds) for name, value in text.items()}
    return metrics, base.assign(caption=predicted, rouge_l=rouge, caption_event=caption_event), predicted


def _video_figures(
    systems: Sequence[System],
    vdms: Mapping[str, VideoDiffusionModel],
    texts: Mapping[str, tuple[dict[str, Any], pd.DataFrame, list[str] | None]],
    reference: Reference,
    seeds: Sequence[int],
    rendering: Mapping[str, Any],
    scoring: Mapping[str, Any],
) -> dict[str, _VideoFigures]:
    """Each video system's clips for every seed (``vdm="still"``: the context's last frame held), scored.
    The loop runs per VDM, then per seed, so one seed's clips of one VDM are what its systems share."""
    videos = {s.name: _VideoFigures() for s in systems if s.vdm is not None}
    for vdm_name in dict.fromkeys(s.vdm for s in systems if s.vdm is not None):
        vdm = vdms[vdm_name] if vdm_name != "still" else None
        members = [s for s in systems if s.vdm == vdm_name]
        held = np.repeat(reference.contexts[:, -1:], rendering["frames"], axis=1) if vdm is None else None
        for seed in seeds:
            cache: RenderCache = {}
            for system in members:
                _, base, captions = texts[system.name]
                if held is not None:
                    clips = held
                else:
                    clips = render(vdm, captions, reference.contexts, seed=seed, cache=cache, **rendering)
                videos[system.name].add(seed, clips, base, reference, scoring)
    return videos


@dataclass
class _VideoFigures:
    """One system's video metrics as its seeds are scored: each metric per seed, the per-sample rows
    and the first seed's clips."""

    per_seed: dict[str, list[float]] = field(default_factory=dict)
    rows: list[pd.DataFrame] = field(default_factory=list)
    first: np.ndarray | None = None

    def add(
        self,
        seed: int,
        clips: np.ndarray,
        base: pd.DataFrame,
        reference: Reference,
        scoring: Mapping[str, Any],
    ) -> None:
        seed_summary, seed_samples = video_metrics(clips, reference, **scoring)
        for name, value in seed_summary.items():
            self.per_seed.setdefault(name, []).append(value)
        self.rows.append(base.assign(seed=seed, **seed_samples))
        self.first = clips if self.first is None else self.first


def _system_entry(system: System, metrics: dict[str, Any], captions: pd.DataFrame | None) -> dict[str, Any]:
    entry = {
        "label": system.label,
        "vlm": system.vlm,
        "vdm": system.vdm,
        "ranked": system.ranked,
        "metrics": metrics,
    }
    if system.writes_captions:
        entry["well_formed"] = float(captions["well_formed"].mean())
    return entry
