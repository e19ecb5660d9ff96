"""VLM supervised fine-tuning: (context video, question) →
``[Think] reasoning [/Think] [Ans] caption [/Ans]``, cross-entropy on the answer tokens only."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import rouge_l
from vans_pipelines.models.answer_format import format_answer, parse_answer
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.samples import ordered_batches
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.data import TrainValDataModule
from vans_pipelines.training.trainer import FitResult, OptimConfig, TrainingRun, fit

if TYPE_CHECKING:  # params imports training: only the annotation refers back
    from vans_pipelines.params import VLMParams


class VLMSFTModule(TrainingModule):
    def __init__(
        self, vlm: VisionLanguageModel, optim: OptimConfig, max_new_tokens: int = 48, log_samples: int = 4
    ):
        super().__init__()
        self.vlm = vlm
        self.model = vlm.model  # registered, so Lightning moves, wraps and checkpoints it
        self.optim = optim
        self.save_hyperparameters(
            {"optim": asdict(optim), "max_new_tokens": max_new_tokens, "log_samples": log_samples}
        )

    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        answers = [format_answer(r, c) for r, c in zip(batch["reasoning"], batch["caption"], strict=True)]
        inputs = self.vlm.batch(list(batch["context"]), batch["question"], answers)
        return self.model(**{k: v.to(self.device) for k, v in inputs.items()}).loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, prog_bar=False, batch_size=len(batch["question"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log(
            "val/loss", self._loss(batch), on_epoch=True, sync_dist=True, batch_size=len(batch["question"])
        )
        if batch_idx == 0 and self.hparams.log_samples:
            n = self.hparams.log_samples
            out = self.vlm.generate(
                list(batch["context"][:n]), batch["question"][:n], max_new_tokens=self.hparams.max_new_tokens
            )
            self.log_texts(
                "samples/captions",
                [
                    f"{q} → {t}  (truth: {c})"
                    for q, t, c in zip(batch["question"], out.texts, batch["caption"], strict=False)
                ],
            )


def evaluate_vlm(
    vlm: VisionLanguageModel,
    samples: Dataset,
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    limit: int | None = None,
) -> dict[str, Any]:
    """Greedy answers on ``samples``: mean caption ROUGE-L against the ground truth, format rate, examples."""
    scores, formats, examples = [], [], []
    for _, batch in ordered_batches(samples, batch_size, limit):
        out = vlm.generate(list(batch["context"]), batch["question"], max_new_tokens=max_new_tokens)
        answers = [parse_answer(t) for t in out.texts]
        scores.extend(rouge_l([a.caption for a in answers], batch["caption"]).tolist())
        formats.extend(float(a.well_formed) for a in answers)
        if len(examples) < 4:
            examples.extend(
                {"question": q, "output": t, "truth": c}
                for q, t, c in zip(batch["question"], out.texts, batch["caption"], strict=True)
            )
    return {
        "samples": len(scores),
        "rouge_l": float(np.mean(scores)) if scores else float("nan"),
        "format_rate": float(np.mean(formats)) if formats else float("nan"),
        "examples": examples[:4],
    }


def fit_sft_vlm(
    vlm: VisionLanguageModel, params: VLMParams, train: Dataset, val: Dataset, run: TrainingRun
) -> FitResult:
    """Supervised fine-tuning of ``vlm`` on ``train`` (``params``: ``sft.vlm``), validated on ``val``;
    the model is left in eval mode."""
    result = fit(
        VLMSFTModule(vlm, params.optim, max_new_tokens=params.eval.max_new_tokens),
        TrainValDataModule(
            train, val, params.trainer.batch_size, params.trainer.seed, params.trainer.num_workers
        ),
        params.trainer,
        run,
    )
    vlm.model.eval()
    return result
