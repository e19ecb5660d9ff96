"""Stage-1 GRPO step time against Hugging Face TRL's ``GRPOTrainer`` on the same tiny model, prompts,
rewards, group size and generation length, measured side by side in one run.

    .venv/bin/pip install -e ".[bench]"      # TRL (benchmark only; not a runtime dependency)
    .venv/bin/python -m benchmarks.grpo_stage1_vs_trl [--steps 16] [--smoke] [--json out.json]

Both sides train a LoRA adapter (rank 8, alpha 32) of the embedded default's tiny Qwen2.5-VL with the
stage-1 reward (format 0.2 + ROUGE-L 1.0 + CLIP-V 1.0, the video rendered by a frozen tiny Wan VDM from
each sampled caption), 4 prompts x G = 8 samples per step, 48 new tokens at temperature 0.7, loss ``grpo``,
no KL, one iteration per rollout. TRL's multimodal path takes images in a chat template through a
processor, not videos, so the comparison is **text-only on both sides** (the same prompt tokens, without
the video); ``ours+video`` is our real stage-1 step with the context video, for reference. Reported: the
median step time after two warm-up steps. Target: ours / TRL <= 1.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.figures import write_figures
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.render import render
from vans_pipelines.models.scorer import TinyScorer, TinyScorerSpec
from vans_pipelines.models.tiny import TinyVDMSpec, TinyVLMSpec, build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.models.vlm import VisionLanguageModel, prompt_text
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.rl.rewards import REWARDS
from vans_pipelines.samples import TripletSamples
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.grpo import manual_trainer_config
from vans_pipelines.training.grpo_vlm import GRPOVLMModule, SamplingConfig, Stage1Settings
from vans_pipelines.training.trainer import OptimConfig, RunPaths, TrainerConfig, fit
from vans_pipelines.world import reasoning_for, render_split
from vans_pipelines.world.events import Event

PROMPTS, G, NEW_TOKENS, TEMPERATURE, LR, RENDER_STEPS = 4, 8, 48, 0.7, 5e-4, 4
WEIGHTS = {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 1.0}
LORA = LoraSpec(rank=8, alpha=32, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))


class TextOnlyVLM(VisionLanguageModel):
    """The same model, prompted without the video (what TRL can feed it)."""

    def text_prompt_ids(self, question: str) -> list[int]:
        ids = self.tokenizer(prompt_text(question), add_special_tokens=False)["input_ids"]
        return [i for i in ids if i not in self.vision_token_ids]

    def batch(self, videos, questions, answers=None):
        rows = [self.text_prompt_ids(q) for q in questions]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        return {"input_ids": ids, "attention_mask": mask}


class StepTimer(Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_batch_start(self, *args):
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args):
        self.times.append(time.perf_counter() - self._start)


def build(seed: int = 0):
    world = render_split(seed, "train", 32, context_frames=16, target_frames=16, height=32, width=32)
    captions = {}
    for r in world.index.itertuples():
        event = Event.from_dict(json.loads(r.event))
        captions[r.sample_id] = (r.caption, reasoning_for(r.family, event, json.loads(r.state)))
    tokenizer = build_word_tokenizer([t for p in captions.values() for t in p] + list(world.index.question))
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0, seed=0)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=6), seed=0)
    for m in vdm.modules().values():
        m.eval().requires_grad_(False)
    scorer = TinyScorer.build(tokenizer, TinyScorerSpec())
    return TripletSamples(world, captions), tokenizer, vlm, vdm, scorer


def ours(samples, vlm, vdm, scorer, steps: int, text_only: bool) -> list[float]:
    if text_only:
        vlm = TextOnlyVLM(vlm.model, vlm.tokenizer, vlm.processing)
    vlm.add_lora(LORA)
    settings = Stage1Settings(
        GRPOConfig(group_size=G, loss_type="grpo"),
        WEIGHTS,
        OptimConfig(lr=LR, schedule="constant"),
        log_samples_every=0,
        sampling=SamplingConfig(temperature=TEMPERATURE, max_new_tokens=NEW_TOKENS),
        render_steps=RENDER_STEPS,
    )
    module = GRPOVLMModule(vlm, vdm, scorer, settings)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainerConfig(accelerator="cpu", devices=1, max_steps=steps, batch_size=PROMPTS)
        fit(
            module,
            SamplesDataModule(samples, PROMPTS, 0),
            manual_trainer_config(config),
            RunPaths(tmp, tmp, "bench").training("grpo_vlm", "bench", callbacks=[timer]),
        )
    return timer.times


def trl(samples, vlm, vdm, scorer, steps: int) -> list[float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    text_vlm = TextOnlyVLM(vlm.model, vlm.tokenizer, vlm.processing)
    tokenizer = vlm.tokenizer
    items = [samples[i] for i in range(len(samples))]
    rows = [
        {
            "prompt": tokenizer.decode(text_vlm.text_prompt_ids(it["question"])),
            "index": i,
            "truth": it["caption"],
        }
        for i, it in enumerate(items)
    ]
    for row, it in zip(rows, items, strict=True):  # the prompt string re-tokenises to the same ids
        assert tokenizer(row["prompt"], add_special_tokens=False)["input_ids"] == text_vlm.text_prompt_ids(
            it["question"]
        )

    def format_reward(prompts: Sequence[str], completions: Sequence[str], **_) -> list[float]:
        return REWARDS["format"](completions=completions).tolist()

    def text_fidelity(prompts, completions, truth, **_) -> list[float]:
        caps = [parse_answer(c).caption for c in completions]
        return REWARDS["text_fidelity"](captions=caps, reference_captions=truth).tolist()

    def video_fidelity(prompts, completions, index, **_) -> list[float]:
        contexts = np.stack([items[i]["context"] for i in index])
        clips = render(
            vdm,
            [parse_answer(c).caption for c in completions],
            contexts,
            frames=items[0]["target"].shape[0],
            num_steps=RENDER_STEPS,
            seed=0,
        )
        refs = [items[i]["target"] for i in index]
        return REWARDS["video_fidelity"](videos=list(clips), reference_videos=refs, scorer=scorer).tolist()

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            times.append(time.perf_counter() - self._start)

    model = vlm.model
    model.generation_config.eos_token_id = vlm.end_token_id
    model.generation_config.pad_token_id = vlm.pad_token_id
    with tempfile.TemporaryDirectory() as tmp:
        config = TRLConfig(
            output_dir=tmp,
            per_device_train_batch_size=PROMPTS * G,
            num_generations=G,
            max_completion_length=NEW_TOKENS,
            temperature=TEMPERATURE,
            top_p=1.0,
            learning_rate=LR,
            lr_scheduler_type="constant",
            beta=0.0,
            loss_type="grpo",
            scale_rewards="group",
            reward_weights=[WEIGHTS["format"], WEIGHTS["text_fidelity"], WEIGHTS["video_fidelity"]],
            max_steps=steps,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=10_000,
            seed=0,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[format_reward, text_fidelity, video_fidelity],
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=LORA.to_peft(),
            callbacks=[Timer()],
        )
        trainer.train()
    return times


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--smoke", action="store_true", help="3 steps: the code runs (CI), not a timing")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    steps = 3 if args.smoke else args.steps
    try:
        import trl as trl_package
    except ImportError:
        raise SystemExit('TRL is not installed: pip install -e ".[bench]"') from None
    results = {}
    for name in ("trl", "ours", "ours+video"):
        samples, _, vlm, vdm, scorer = build()
        if name == "trl":
            times = trl(samples, vlm, vdm, scorer, steps)
        else:
            times = ours(samples, vlm, vdm, scorer, steps, text_only=name == "ours")
        if len(times) != steps:
            raise SystemExit(f"{name}: timed {len(times)} of {steps} steps")
        results[name] = statistics.median(times[2:])
    print(f"torch {torch.__version__}, trl {trl_package.__version__}, {torch.get_num_threads()} threads")
    print(f"{PROMPTS} prompts x G={G}, {NEW_TOKENS} new tokens, {steps} steps (median after 2)")
    for name, seconds in results.items():
        print(f"{name:>11}: {seconds:6.3f} s per step")
    ratio = results["ours"] / results["trl"]
    print(
        f"ours / trl (text-only, same work) = {ratio:.3f}  "
        f"(target <= 1.0: {'met' if ratio <= 1.0 else 'NOT met'})"
    )
    figures = {**{f"{name}_seconds_per_step": s for name, s in results.items()}, "ours_over_trl": ratio}
    write_figures(args.json, {"steps": steps, **figures}, smoke=args.smoke)
    return figures


if __name__ == "__main__":
    main()
