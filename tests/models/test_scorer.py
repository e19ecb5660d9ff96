import numpy as np
import torch

from tests.paper_checkpoints import clip_folder
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


def test_pretrained_clip_plugs_in_through_the_same_interface(tmp_path):
    folder = clip_folder(tmp_path, ["the red circle falls.", "a blue square bounces off the wall."])
    scorer = load_scorer(folder)
    assert isinstance(scorer, ClipScorer)
    sim = video_text_similarity(scorer, videos(), ["the red circle falls."] * 3)
    assert sim.shape == (3,) and bool(((sim >= -1) & (sim <= 1)).all())
