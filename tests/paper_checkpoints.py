"""Tiny random checkpoints in the exact folder layouts of the ones the paper recipe loads, so `kedro run
--env paper` can be run end to end on a CPU with nothing but their paths changed:

- ``qwen2_5_vl/``: a Qwen2.5-VL checkpoint as the hub ships it (``config.json``, ``generation_config.json``,
  safetensors weights, a byte-level BPE ``tokenizer.json`` with ``vocab.json`` / ``merges.txt`` /
  ``tokenizer_config.json``, ``chat_template.json``, ``preprocessor_config.json``);
- ``wan2_1/``: a Wan2.1 text-to-video diffusers folder written by ``WanPipeline.save_pretrained``
  (``model_index.json``, ``transformer/``, ``vae/`` with 4x temporal and 8x spatial compression,
  ``text_encoder/`` (UMT5), ``tokenizer/`` (a T5 unigram tokenizer), ``scheduler/`` (UniPC, flow));
- ``clip/``: a CLIPModel folder (weights, BPE tokenizer, ``preprocessor_config.json``);
- ``videomae/``: a VideoMAE folder, the FVD feature extractor's stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPTokenizerFast,
    GenerationConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2TokenizerFast,
    T5TokenizerFast,
    UMT5Config,
    UMT5EncoderModel,
    VideoMAEConfig,
    VideoMAEModel,
)

from vans_pipelines.models.tiny import TinyVLMSpec, tiny_vlm_config
from vans_pipelines.triplets import QUESTIONS
from vans_pipelines.world import render_sample

QWEN_SPECIAL = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen2.5-VL's chat template, cut to what a text + video conversation needs.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def world_corpus(count: int = 48) -> list[str]:
    """Captions, reasoning-like words and questions of the synthetic world: what the tokenizers learn."""
    geometry = {"context_frames": 2, "target_frames": 2, "height": 16, "width": 16}
    captions = [render_sample(0, "train", i, **geometry).caption for i in range(count)]
    questions = [q for family in QUESTIONS.values() for q in family]
    return captions + questions + ["[Think] [/Think] [Ans] [/Ans]"]


def _byte_level_bpe(corpus: Sequence[str], vocab_size: int, special: Sequence[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def qwen2_5_vl_folder(root: Path, corpus: Sequence[str], seed: int = 0) -> Path:
    """A random-init tiny Qwen2.5-VL in the hub's layout (8-pixel vision patches, 2 text layers)."""
    folder = root / "qwen2_5_vl"
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=_byte_level_bpe(corpus, 600, QWEN_SPECIAL),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN_SPECIAL[1:]),
        errors="replace",
    )
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(folder)
    spec = TinyVLMSpec()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(tiny_vlm_config(tokenizer, spec))
    model.save_pretrained(folder)
    GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>")], pad_token_id=tokenizer.pad_token_id
    ).save_pretrained(folder)
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": QWEN_CHAT_TEMPLATE}, indent=2))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "do_convert_rgb": True,
                "do_normalize": True,
                "do_rescale": True,
                "do_resize": True,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "Qwen2_5_VLProcessor",
                "max_pixels": 1 << 20,
                "min_pixels": 64,
                "merge_size": spec.merge_size,
                "patch_size": spec.patch_size,
                "temporal_patch_size": spec.temporal_patch_size,
                "resample": 3,
                "rescale_factor": 1 / 255,
            },
            indent=2,
        )
    )
    return folder


def _t5_unigram(corpus: Sequence[str]) -> T5TokenizerFast:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))]
    )
    return T5TokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )


def wan2_1_folder(root: Path, corpus: Sequence[str], seed: int = 0) -> Path:
    """A random-init tiny Wan2.1 text-to-video pipeline folder: the VAE compresses time 4x (clips of
    4k + 1 frames) and space 8x, as Wan2.1's does; the transformer patches latents 1x2x2."""
    folder = root / "wan2_1"
    tokenizer = _t5_unigram(corpus)
    z = 4
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(
            base_dim=8,
            z_dim=z,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            attn_scales=[],
            temperal_downsample=[False, True, True],
            latents_mean=[0.0] * z,
            latents_std=[1.0] * z,
        )
        text_encoder = UMT5EncoderModel(
            UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
        )
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=z,
            out_channels=z,
            text_dim=32,
            freq_dim=32,
            ffn_dim=64,
            num_layers=1,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
        )
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=vae, scheduler=scheduler
    ).save_pretrained(folder)
    return folder


def clip_folder(root: Path, corpus: Sequence[str], seed: int = 0) -> Path:
    """A random-init tiny CLIPModel with a BPE tokenizer and its image processor's settings."""
    folder = root / "clip"
    bpe = _byte_level_bpe(corpus, 400, ["<|startoftext|>", "<|endoftext|>"])
    bpe.normalizer = normalizers.Lowercase()
    tokenizer = CLIPTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.save_pretrained(folder)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        CLIPModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": {"height": 32, "width": 32},
                "do_center_crop": True,
                "do_normalize": True,
                "do_resize": True,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "image_processor_type": "CLIPImageProcessor",
                "resample": 3,
                "rescale_factor": 1 / 255,
                "size": {"shortest_edge": 32},
            },
            indent=2,
        )
    )
    return folder


def videomae_folder(root: Path, seed: int = 0) -> Path:
    """A random-init tiny VideoMAE (the usual I3D stand-in for FVD features)."""
    folder = root / "videomae"
    config = VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        VideoMAEModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}, indent=2)
    )
    return folder


def paper_checkpoints(root: Path) -> dict[str, Path]:
    """Every checkpoint the paper recipe names, by its key under ``checkpoints``."""
    corpus = world_corpus()
    return {
        "qwen2_5_vl": qwen2_5_vl_folder(root, corpus),
        "wan2_1": wan2_1_folder(root, corpus),
        "clip": clip_folder(root, corpus),
        "fvd_extractor": videomae_folder(root),
    }
