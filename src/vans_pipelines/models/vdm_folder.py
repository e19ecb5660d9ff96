"""How a saved VDM folder is laid out and read back: diffusers' subfolders (``transformer/``, ``vae/``,
``text_encoder/``, ``tokenizer/``) plus ``vans_vdm.json``, where frozen parts may be *referenced* in the
folder they were loaded from instead of copied (Wan2.1's UMT5-XXL text encoder alone is ~11 GB), with the
signature of their weights to check on loading."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import AutoTokenizer, PreTrainedTokenizerBase, UMT5EncoderModel

from vans_pipelines.models.lora import base_state_dict

META_FILE = "vans_vdm.json"
#: Frozen parts a saved VDM references in the folder it was loaded from instead of copying them, when
#: their weights are unchanged (Wan2.1's UMT5-XXL text encoder alone is ~11 GB).
REFERENCED_PARTS = ("vae", "text_encoder")


def weights_signature(module: torch.nn.Module) -> str:
    """A digest of ``module``'s weights (without LoRA adapters): each tensor's name, shape, dtype, sum and
    sum of squares (accumulated in float64, a few million values at a time). Any training step changes
    it; computing it reads the weights once."""
    digest = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in sorted(base_state_dict(module).items()):
            total = torch.zeros(2, dtype=torch.float64, device=tensor.device)
            for chunk in tensor.detach().reshape(-1).split(1 << 22):
                values = chunk.double()
                total += torch.stack([values.sum(), values.square().sum()])
            digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            digest.update(total.cpu().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class PartSource:
    """Where a part's weights were loaded from: the model folder holding its ``<part>/`` subfolder, and
    their :func:`weights_signature` then."""

    folder: str
    signature: str


def part_reference(
    part: str, module: torch.nn.Module, source: PartSource | None, path: Path
) -> dict[str, str] | None:
    """``{"path", "signature"}`` of ``part``'s source folder, relative to ``path``, if the part can be
    referenced there (its source still holds it and its weights did not change); else None."""
    if source is None or not (Path(source.folder) / part).is_dir():
        return None
    if Path(source.folder).resolve() == path.resolve():
        return None
    if weights_signature(module) != source.signature:
        return None
    return {"path": os.path.relpath(source.folder, path), "signature": source.signature}


@dataclass
class StoredParts:
    """A VDM folder's parts as loaded, before the model is assembled: its metadata (empty for a plain
    Wan2.1 checkpoint), the folder the transformer's base came from, and where the frozen parts did."""

    transformer: WanTransformer3DModel
    vae: AutoencoderKLWan
    text_encoder: UMT5EncoderModel
    tokenizer: PreTrainedTokenizerBase
    meta: dict[str, Any]
    transformer_root: Path
    sources: dict[str, PartSource]


def load_parts(local: Path, dtype: torch.dtype | None = None) -> StoredParts:
    """Every part of the VDM folder ``local``, referenced parts from the folders they name, checked
    against their stored signature (a load that converts the dtype changes the values, so only a plain
    load can check them)."""
    meta = json.loads((local / META_FILE).read_text()) if (local / META_FILE).is_file() else {}
    kwargs = {"torch_dtype": dtype} if dtype is not None else {}
    base = meta.get("transformer_base")
    transformer_root = local if base in (None, ".") else _referenced_folder(local, base)
    transformer = WanTransformer3DModel.from_pretrained(
        str(transformer_root), subfolder="transformer", **kwargs
    )
    roots = {part: local for part in REFERENCED_PARTS}
    for part, reference in meta.get("parts", {}).items():
        roots[part] = _referenced_folder(local, reference["path"])
    vae = AutoencoderKLWan.from_pretrained(str(roots["vae"]), subfolder="vae", **kwargs)
    text_encoder = UMT5EncoderModel.from_pretrained(
        str(roots["text_encoder"] / "text_encoder"), **({"dtype": dtype} if dtype else {})
    )
    tokenizer = AutoTokenizer.from_pretrained(str(local / "tokenizer"))
    sources = {}
    for part, module in (("vae", vae), ("text_encoder", text_encoder)):
        sources[part] = PartSource(str(roots[part].resolve()), weights_signature(module))
        reference = meta.get("parts", {}).get(part)
        if dtype is None and reference is not None and reference["signature"] != sources[part].signature:
            raise ValueError(
                f"{local}: its {part} is the one in {roots[part]}, whose weights changed since {local} "
                "was saved (save it again from the model it was trained with)"
            )
    return StoredParts(transformer, vae, text_encoder, tokenizer, meta, transformer_root, sources)


def _referenced_folder(local: Path, reference: str) -> Path:
    """The folder a saved VDM at ``local`` references: relative to ``local`` (or absolute, or, as
    earlier versions stored it, relative to the working directory)."""
    folder = local / reference
    if not folder.is_dir() and Path(reference).is_dir():
        folder = Path(reference)
    if not folder.is_dir():
        raise FileNotFoundError(f"{local}: it references {reference}, which is not a folder (from {local})")
    return folder
