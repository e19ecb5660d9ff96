from pathlib import Path

import pytest
import yaml

from vans_pipelines.params import ParameterError, validate_parameters

CONF = Path(__file__).resolve().parents[1] / "conf"


def load_env(env: str) -> dict:
    params: dict = {}
    for base in ("base", env):
        for f in sorted((CONF / base).glob("parameters*.yml")):
            for key, value in (yaml.safe_load(f.read_text()) or {}).items():
                params[key] = {**params.get(key, {}), **value} if isinstance(value, dict) else value
    return params


def with_override(params: dict, dotted: str, value) -> dict:
    import copy

    out = copy.deepcopy(params)
    *path, last = dotted.split(".")
    node = out
    for p in path:
        node = node.setdefault(p, {})
    node[last] = value
    return out


@pytest.mark.parametrize("env", ["base", "paper"])
def test_shipped_configs_are_valid(env):
    parsed = validate_parameters(load_env(env))
    assert {"ingest", "video_geometry"} <= set(parsed)


def test_paper_config_has_the_paper_clip_geometry():
    ingest = validate_parameters(load_env("paper"))["ingest"]
    assert (ingest.clip.target_frames, ingest.clip.height, ingest.clip.width) == (33, 352, 640)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "ingest.clip.context_frames",
            1,
            "ingest.clip.context_frames: Input should be greater than or equal to 2",
        ),
        ("ingest.clip.height", 30, "ingest.clip.height: 30 is not divisible by"),
        (
            "ingest.clip.width",
            36,
            "ingest.clip.width: 36 is not divisible by vae_spatial_factor x patch = 2 x 4 = 8",
        ),
        (
            "ingest.synthetic.num_val",
            -1,
            "ingest.synthetic.num_val: Input should be greater than or equal to 0",
        ),
        ("ingest.source", "youtube", "ingest.source: Input should be 'synthetic' or 'videos'"),
        ("ingest.clip.hieght", 32, "ingest.clip.hieght: Extra inputs are not permitted"),
        ("ingest.videos.test_fraction", 0.95, "ingest.videos"),
        ("ingest.clip.height", 64, "ingest.clip.height: 64x32 (height x width) is taller"),
        ("video_geometry.patch_size", [1, 0, 2], "video_geometry"),
    ],
)
def test_bad_values_name_their_key(key, value, message):
    with pytest.raises(ParameterError) as err:
        validate_parameters(with_override(load_env("base"), key, value))
    assert message in str(err.value)


def test_temporal_vae_needs_4k_plus_1_frames():
    params = with_override(load_env("base"), "video_geometry.vae_temporal_factor", 4)
    with pytest.raises(ParameterError, match=r"ingest.clip.context_frames: 16 frames; the VAE needs 4k \+ 1"):
        validate_parameters(params)
    params = with_override(
        with_override(params, "ingest.clip.context_frames", 17), "ingest.clip.target_frames", 17
    )
    # 17 frames are 5 latent frames: too few slots for the 6 context latents.
    with pytest.raises(ParameterError, match=r"sft.vdm.conditioning.context_frames: 6 latent slots"):
        validate_parameters(params)
    validate_parameters(with_override(params, "sft.vdm.conditioning.context_frames", 5))


def test_all_errors_are_reported_together():
    params = with_override(with_override(load_env("base"), "ingest.clip.height", 30), "ingest.clip.width", 50)
    with pytest.raises(ParameterError) as err:
        validate_parameters(params)
    text = str(err.value)
    assert "ingest.clip.height" in text and "ingest.clip.width" in text
