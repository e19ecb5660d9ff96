"""LoRA adapters through peft, one implementation for the VLM and the VDM transformer.

Adapters are injected into the model in place (``peft.inject_adapter_in_model``), so the wrapped model keeps
its own class and forward; the reference policy for GRPO's KL is the same model with its adapters disabled
(:func:`adapters_disabled`), so no second copy lives in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
SPEC_FILE = "vans_lora.json"  # our LoraSpec beside PEFT's config
PEFT_PREFIX = "base_model.model."  # how PeftModel names the weights of the model it wraps


@dataclass(frozen=True)
class LoraSpec:
    """What to adapt and how strongly (the paper: rank 8, alpha 32 on the attention projections)."""

    rank: int = 8
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = field(default=("q_proj", "k_proj", "v_proj", "o_proj"))

    def to_peft(self) -> LoraConfig:
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
        )


def has_lora(module: torch.nn.Module) -> bool:
    return any(isinstance(m, BaseTunerLayer) for m in module.modules())


def add_lora(module: torch.nn.Module, spec: LoraSpec, seed: int = 0) -> torch.nn.Module:
    """Inject a fresh adapter (B = 0, so outputs are unchanged) and freeze everything else. A's random
    init is drawn from ``seed``, not from whatever state the global generator is in (reproducible runs)."""
    if has_lora(module):
        raise ValueError(f"{type(module).__name__} already carries a LoRA adapter")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(spec.to_peft(), module)
    for name, param in module.named_parameters():
        param.requires_grad = "lora_" in name
    return module


def merge_lora(module: torch.nn.Module) -> torch.nn.Module:
    """Fold every adapter into its base weights and remove it (a LoRA-fine-tuned model becomes the plain
    base of the next stage's adapter)."""
    for name, layer in list(module.named_modules()):
        if isinstance(layer, BaseTunerLayer):
            layer.merge()
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, layer.get_base_layer())
    if hasattr(module, "peft_config"):  # the next injection would otherwise stack on a stale config
        del module.peft_config
    for param in module.parameters():
        param.requires_grad = True
    return module


@contextmanager
def adapters_disabled(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Run ``module`` as its base model (the GRPO reference policy) inside the block."""
    layers = [m for m in module.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield module
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def save_lora(module: torch.nn.Module, directory: str | Path, spec: LoraSpec) -> None:
    """The adapter in PEFT's own layout (``adapter_config.json`` from :class:`peft.LoraConfig`, weights
    under PeftModel's key names), so ``PeftModel.from_pretrained(base, directory)`` loads it; our
    :class:`LoraSpec` (target order kept) goes to a side file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        PEFT_PREFIX + k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(module).items()
    }
    save_file(state, str(directory / ADAPTER_WEIGHTS))
    spec.to_peft().save_pretrained(str(directory))
    (directory / SPEC_FILE).write_text(json.dumps(asdict(spec), indent=2) + "\n")


def _saved_spec(directory: Path) -> LoraSpec:
    side = directory / SPEC_FILE
    if side.is_file():
        raw = json.loads(side.read_text())
    else:
        raw = json.loads((directory / ADAPTER_CONFIG).read_text())
        if "peft_type" in raw:  # an adapter PEFT wrote: read its config
            config = LoraConfig.from_pretrained(str(directory))
            raw = {
                "rank": config.r,
                "alpha": config.lora_alpha,
                "dropout": config.lora_dropout,
                "target_modules": sorted(config.target_modules),
            }
    return LoraSpec(**{**raw, "target_modules": tuple(raw["target_modules"])})


def load_lora(module: torch.nn.Module, directory: str | Path) -> LoraSpec:
    """Inject the adapter saved in ``directory`` (by :func:`save_lora`, by PEFT, or in this project's
    earlier layout) into ``module`` and load its weights."""
    directory = Path(directory)
    spec = _saved_spec(directory)
    add_lora(module, spec)
    weights = {k.removeprefix(PEFT_PREFIX): v for k, v in load_file(str(directory / ADAPTER_WEIGHTS)).items()}
    result = set_peft_model_state_dict(module, weights)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"{directory}: adapter weights do not fit the model: {unexpected[:3]}")
    return spec


def base_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``module`` without its adapter, under the base model's own key names."""
    out = {}
    for key, value in module.state_dict().items():
        if "lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    return out


class AdaptedModel:
    """LoRA on one module of a model wrapper (``adapted_module()``), for the VLM and the VDM alike: add or
    start an adapter, and save it with or without its base. The wrapper holds ``lora`` (the adapter's
    spec) and ``base_path`` (a folder with the base weights, or None when they live only in memory)."""

    lora: LoraSpec | None
    base_path: str | None

    def adapted_module(self) -> torch.nn.Module:
        raise NotImplementedError

    def add_lora(self, spec: LoraSpec, seed: int = 0) -> None:
        add_lora(self.adapted_module(), spec, seed)
        self.lora = spec

    def start_adapter(self, spec: LoraSpec, seed: int = 0) -> None:
        """A fresh adapter for the next training stage; one left by an earlier stage is merged first
        (the merged weights then differ from any base checkpoint, so they are saved in full)."""
        if has_lora(self.adapted_module()):
            merge_lora(self.adapted_module())
            self.base_path = None
        self.add_lora(spec, seed)

    def base_reference(self, folder: Path) -> str | None:
        """Where a save into ``folder`` finds the adapted module's base weights instead of copying them:
        ``base_path``, or None when they live only in memory."""
        return self.base_path

    def save_weights(
        self, folder: Path, full: str, adapter: str, base: str, build_base: Callable[[], torch.nn.Module]
    ) -> str | None:
        """The adapted module's weights in ``folder``: in full under ``full`` without LoRA; with LoRA the
        adapter under ``adapter`` and, when the base weights have no folder of their own
        (:meth:`base_reference`), a copy of them under ``base`` (a model from ``build_base`` holding
        them). Returns where the base lives (``base`` for the copy, else the reference); None for full
        weights."""
        module = self.adapted_module()
        if not has_lora(module):
            module.save_pretrained(folder / full)
            return None
        save_lora(module, folder / adapter, self.lora or LoraSpec())
        reference = self.base_reference(folder)
        if reference is not None:
            return reference
        copy = build_base()
        copy.load_state_dict(base_state_dict(module))
        copy.save_pretrained(folder / base)
        return base
