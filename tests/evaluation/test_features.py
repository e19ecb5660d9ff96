import numpy as np
import pytest

from tests.paper_checkpoints import videomae_folder
from vans_pipelines.evaluation.features import PretrainedVideoFeatures, build_features


def test_a_saved_transformers_video_model_gives_named_features(tmp_path):
    features = build_features("pretrained", scorer=None, path=str(videomae_folder(tmp_path)))
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
