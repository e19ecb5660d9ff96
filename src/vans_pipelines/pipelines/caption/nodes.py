"""Caption nodes: fill the caption and reasoning of each target clip, build the tokenizer, train the scorer.

Synthetic triplets are captioned from the world's ground truth; real-video triplets by a captioner VLM
(``caption.captioner.path``). The catalog loads and saves models, tables and reports; the scorer's trainer
writes TensorBoard logs and resumable checkpoints where ``run`` says.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.scorer import ClipScorer, TinyScorer, VideoTextScorer
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import CaptionParams, RunContext, parse_section
from vans_pipelines.samples import samples
from vans_pipelines.training.data import SamplesDataModule, check_batch_fits
from vans_pipelines.training.scorer import ScorerModule, retrieval_accuracy
from vans_pipelines.training.trainer import fingerprint, fit, world_size
from vans_pipelines.triplets import QUESTIONS, TripletSet
from vans_pipelines.world import reasoning_for
from vans_pipelines.world.events import Event

logger = logging.getLogger(__name__)

CAPTION_COLUMNS = ("sample_id", "split", "caption", "reasoning", "captioned_by")


class CaptionError(RuntimeError):
    """Captions cannot be produced; the message names the key to set."""


def _world_rows(triplets: TripletSet) -> tuple[list[dict[str, Any]], list[int]]:
    rows, pending = [], []
    for i, r in enumerate(triplets.index.itertuples(index=False)):
        if r.source == "synthetic" and isinstance(getattr(r, "event", None), str):
            event = Event.from_dict(json.loads(r.event))
            reasoning = reasoning_for(r.family, event, json.loads(r.state))
            rows.append(
                dict(zip(CAPTION_COLUMNS, (r.sample_id, r.split, r.caption, reasoning, "world"), strict=True))
            )
        else:
            pending.append(i)
    return rows, pending


def caption_triplets(
    train_triplets: TripletSet,
    val_triplets: TripletSet,
    test_triplets: TripletSet,
    caption: dict[str, Any],
    run_context: RunContext,
) -> pd.DataFrame:
    """One row per sample of every split: ``sample_id, split, caption, reasoning, captioned_by``. The
    captioner runs where ``run.inference`` says."""
    params = parse_section("caption", caption)
    rows: list[dict[str, Any]] = []
    captioner: VisionLanguageModel | None = None
    for triplets in (train_triplets, val_triplets, test_triplets):
        world, pending = _world_rows(triplets)
        rows.extend(world)
        if not pending:
            continue
        if params.captioner.path is None:
            first = triplets.index.iloc[pending[0]]
            raise CaptionError(
                f"{len(pending)} {first['split']} triplets come from real videos "
                f"(e.g. {first['sample_id']!r}, source {first['source']!r}) and need a captioner: "
                "set caption.captioner.path to a Qwen2.5-VL checkpoint folder"
            )
        if captioner is None:
            captioner = VisionLanguageModel.from_pretrained(params.captioner.path)
            captioner.model.eval()
        with run_context.inference.running(captioner):
            rows.extend(_caption_with_vlm(captioner, triplets, pending, params))
    table = pd.DataFrame(rows, columns=list(CAPTION_COLUMNS))
    logger.info("captioned %d samples (%s)", len(table), table["captioned_by"].value_counts().to_dict())
    return table


def _caption_with_vlm(
    vlm: VisionLanguageModel, triplets: TripletSet, pending: list[int], params: CaptionParams
) -> list[dict[str, Any]]:
    out = []
    size = params.captioner.batch_size
    for start in range(0, len(pending), size):
        chunk = [triplets.index.iloc[i] for i in pending[start : start + size]]
        targets = [triplets.clips(r["sample_id"])[1] for r in chunk]
        texts = vlm.generate(
            targets, [params.captioner.prompt] * len(chunk), max_new_tokens=params.captioner.max_new_tokens
        ).texts
        for r, text in zip(chunk, texts, strict=True):
            answer = parse_answer(text)
            caption = answer.caption.strip()
            if not caption:
                raise CaptionError(
                    f"the captioner at caption.captioner.path returned no caption for {r['sample_id']!r}"
                )
            out.append(
                dict(
                    zip(
                        CAPTION_COLUMNS,
                        (r["sample_id"], r["split"], caption, answer.reasoning, "captioner"),
                        strict=True,
                    )
                )
            )
    return out


def build_tokenizer(captions: pd.DataFrame, caption: dict[str, Any]) -> PreTrainedTokenizerBase:
    """The tiny models' tokenizer, trained on questions, reasoning and captions; or a pretrained one."""
    params = parse_section("caption", caption)
    if params.tokenizer.source == "pretrained":
        return AutoTokenizer.from_pretrained(params.tokenizer.path)
    corpus = [*captions["caption"], *captions["reasoning"], *(q for qs in QUESTIONS.values() for q in qs)]
    return build_word_tokenizer(corpus)


def train_scorer(
    train_triplets: TripletSet,
    val_triplets: TripletSet,
    captions: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    caption: dict[str, Any],
    run_context: RunContext,
) -> tuple[VideoTextScorer, dict[str, Any]]:
    """The video-text scorer: the tiny contrastive encoder trained on (target clip, caption) pairs, or a
    pretrained CLIP; with its val video→text retrieval accuracy."""
    params = parse_section("caption", caption)
    train, val = samples(train_triplets, captions), samples(val_triplets, captions)
    inference = run_context.inference
    if params.scorer.kind == "clip":
        scorer: VideoTextScorer = ClipScorer.from_pretrained(params.scorer.path)
        with inference.running(scorer):
            accuracy = retrieval_accuracy(scorer, val)
        return scorer, {"kind": "clip", "path": params.scorer.path, "val": accuracy}
    trainer = params.scorer.trainer
    check_batch_fits("caption.scorer.trainer.batch_size", trainer.batch_size, train, world_size())
    tiny = TinyScorer.build(tokenizer, params.scorer.tiny, seed=trainer.seed)
    with inference.running(tiny):
        before = retrieval_accuracy(tiny, val)
    result = fit(
        ScorerModule(tiny, params.scorer.optim),
        SamplesDataModule(train, trainer.batch_size, trainer.seed, trainer.num_workers),
        trainer,
        run_context.paths.training("scorer", fingerprint(params.scorer, len(train), len(tokenizer))),
    )
    tiny.encoder.eval()
    with inference.running(tiny):
        after = retrieval_accuracy(tiny, val)
    report = {
        "kind": "tiny",
        "steps": result.global_step,
        "train_seconds": round(result.seconds, 2),
        "val_before_training": before,
        "val": after,
    }
    logger.info(
        "scorer: val video->text top-1 %.3f (chance %.3f)", after["video_to_text_top1"], after["chance_top1"]
    )
    return tiny, report
