import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel

from vans_pipelines.models.scorer import (
    ClipScorer,
    TinyScorer,
    TinyScorerSpec,
    load_scorer,
    video_text_similarity,
    video_video_similarity,
)


def videos(n=3):
    return list(np.random.default_rng(0).integers(0, 255, (n, 8, 32, 32, 3), dtype=np.uint8))


def test_tiny_scorer_embeddings_are_unit_and_reload(tokenizer, tmp_path):
    scorer = TinyScorer.build(tokenizer, TinyScorerSpec())
    emb = scorer.embed_videos(videos())
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    scorer.save_pretrained(tmp_path)
    torch.testing.assert_close(load_scorer(tmp_path).embed_videos(videos()), emb)
    assert video_video_similarity(scorer, videos(), videos()).allclose(torch.ones(3), atol=1e-5)


def test_pretrained_clip_plugs_in_through_the_same_interface(tokenizer, tmp_path):
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 0,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    scorer = load_scorer(tmp_path)
    assert isinstance(scorer, ClipScorer)
    sim = video_text_similarity(scorer, videos(), ["the red circle falls."] * 3)
    assert sim.shape == (3,) and bool(((sim >= -1) & (sim <= 1)).all())
