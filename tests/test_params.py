from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vans_pipelines.params import (
    SECTIONS,
    ParameterError,
    check_run,
    conf_parameters,
    parse_section,
    validate_parameters,
)
from vans_pipelines.params.ablate import AblationVariant
from vans_pipelines.params.base import Strict

CONF = Path(__file__).resolve().parents[1] / "conf"


def load_env(env: str) -> dict:
    """conf/base's parameters with ``env``'s merged in key by key, as the project's config loader does."""
    layers = (conf_parameters(CONF / name) for name in ("base", env))
    return OmegaConf.to_container(OmegaConf.merge(*layers))


def with_override(params: dict, dotted: str, value) -> dict:
    import copy

    out = copy.deepcopy(params)
    *path, last = dotted.split(".")
    node = out
    for p in path:
        node = node.setdefault(p, {})
    node[last] = value
    return out


@pytest.mark.parametrize("env", ["base", "paper", "smoke"])
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
        ("evaluate.systems", ["joint_grpo", "nope"], "evaluate.systems: unknown system(s) ['nope'] (known: "),
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


def test_ablation_recipes_resolve_to_typed_stage_sections():
    from vans_pipelines.params import resolve_variant

    parsed = validate_parameters(load_env("base"))
    ablate, stage1, stage2 = parsed["ablate"], parsed["grpo_vlm"], parsed["grpo_vdm"]
    vlm, vdm = resolve_variant("vlm_only", ablate.variants["vlm_only"], stage1, stage2, seed=2)
    assert vdm is None and vlm.trainer.seed == 2 and vlm.log_samples_every == 0
    assert vlm.model_copy(update={"trainer": stage1.trainer, "log_samples_every": 10}) == stage1
    vlm, vdm = resolve_variant("x", ablate.variants["no_semantic_reward"], stage1, stage2, seed=0)
    assert vdm.rewards == {"video_fidelity": 1.0, "semantic_alignment": 0.0, "context_consistency": 0.0}
    vlm, vdm = resolve_variant("c", ablate.variants["cascade_as_one"], stage1, stage2, seed=1)
    assert vlm.rewards == ablate.variants["cascade_as_one"].cascade["rewards"]
    assert vlm.trainer.max_steps == 40 and vlm.grpo.num_iterations == 2 and vlm.trainer.seed == 1
    assert vdm.sde == stage2.sde and vdm.trainer.seed == 1
    bad = with_override(load_env("base"), "ablate.variants.vdm_only.stage2.optim.lr", -1.0)
    with pytest.raises(ParameterError, match=r"ablate\.variants\.vdm_only\.stage2\.optim\.lr: must be > 0"):
        validate_parameters(bad)


def leaves(value, prefix: str) -> dict:
    """Dotted key -> value of a parameter model, dataclass or mapping (tuples as lists)."""
    from dataclasses import asdict, is_dataclass

    if hasattr(value, "model_dump"):
        value = value.model_dump()
    elif is_dataclass(value):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in leaves(item, f"{prefix}.{key}").items()}
    return {prefix: list(value) if isinstance(value, tuple) else value}


def section_models(model, prefix: str):
    """``(dotted name, model class)`` for ``model`` and every section model nested in its fields."""
    yield prefix, model
    for name, field in model.model_fields.items():
        for inner in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(inner, type) and issubclass(inner, Strict):
                yield from section_models(inner, f"{prefix}.{name}")


def test_each_stage_default_is_written_once_in_conf_base():
    """One source of defaults: no field of a section model has a default in the code (conf/base gives
    every value), and conf/base names every field a section has."""
    with_defaults = [
        f"{prefix}.{name}"
        for section, model in SECTIONS.items()
        for prefix, nested in section_models(model, section)
        for name, field in nested.model_fields.items()
        if not field.is_required() and nested is not AblationVariant  # a recipe names only what it changes
    ]
    assert with_defaults == []
    base = load_env("base")
    parsed = validate_parameters(base)
    unset = [
        k
        for name in SECTIONS
        for k in leaves(parsed[name], name)
        if k not in leaves(base[name], name) and not k.startswith(f"{name}.variants.")
    ]
    assert unset == []


def test_a_missing_key_is_named():
    raw = load_env("base")["sft"]
    del raw["vdm"]["optim"]
    with pytest.raises(ParameterError, match=r"sft\.vdm\.optim: missing"):
        parse_section("sft", raw)


def test_model_paths_are_checked_for_the_stages_a_run_runs_only():
    """A pretrained source without a path parses (ingest alone needs no checkpoint); a run of the stage
    that loads it names the key and, when the recipe's checkpoint entry is unset too, that entry."""
    base = load_env("base")
    base["sft"]["vdm"]["model"] = {"source": "pretrained", "path": None}
    parsed = validate_parameters({"sft": base["sft"], "checkpoints": base["checkpoints"]})
    check_run(parsed, {"ingest"})
    with pytest.raises(ParameterError) as error:
        check_run(parsed, {"sft"})
    message = str(error.value)
    assert "sft.vdm.model.path: not set; expected a Wan2.1 diffusers folder" in message
    assert "checkpoints.wan2_1: not set" in message and "checkpoints.qwen2_5_vl" not in message
