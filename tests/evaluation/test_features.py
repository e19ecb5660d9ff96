import numpy as np
import pytest
from transformers import VideoMAEConfig, VideoMAEModel

from vans_pipelines.evaluation.features import PretrainedVideoFeatures, build_features


def test_a_saved_transformers_video_model_gives_named_features(tmp_path):
    config = VideoMAEConfig(
        image_size=16,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    VideoMAEModel(config).save_pretrained(tmp_path / "videomae")
    features = build_features("pretrained", scorer=None, path=str(tmp_path / "videomae"))
    assert isinstance(features, PretrainedVideoFeatures) and features.name.startswith("videomae features")
    clips = np.random.default_rng(0).integers(0, 255, (3, 6, 12, 20, 3), dtype=np.uint8)
    out = features(list(clips))
    assert out.shape == (3, 32) and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])


def test_missing_extractor_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        build_features("pretrained", scorer=None, path=str(tmp_path))
    with pytest.raises(ValueError, match=r"evaluate\.fvd\.kind"):
        build_features("i3d", scorer=None)
