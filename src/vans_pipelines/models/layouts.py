"""The folder layouts of the checkpoints the paper recipe loads, so a wrong path is caught before a run
starts, with what was expected there, instead of deep inside ``from_pretrained``.

A folder written by this project's own ``save_pretrained`` (a model of an earlier run) passes as well: it
carries its marker file (``vans_vlm.json`` / ``vans_vdm.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CheckpointLayout:
    """``what`` a folder must be and the files that show it: ``files`` (relative paths that must exist),
    ``model_type`` (of its ``config.json``, when set); a folder holding ``marker`` is one of ours."""

    what: str
    files: tuple[str, ...]
    model_type: str | None = None
    marker: str | None = None

    def describe(self) -> str:
        return f"{self.what} ({', '.join(self.files)})"

    def problem(self, folder: str | Path) -> str | None:
        """Why ``folder`` is not such a checkpoint (``None`` when it is).

        >>> VIDEO_MODEL.problem("/no/such/folder")
        'no folder at /no/such/folder'
        """
        folder = Path(folder)
        if not folder.is_dir():
            return f"no folder at {folder}"
        if self.marker and (folder / self.marker).is_file():
            return None
        missing = [name for name in self.files if not (folder / name).exists()]
        if missing:
            return f"{folder} has no {', '.join(missing)}"
        if self.model_type is not None:
            config = folder / "config.json"
            try:
                found = json.loads(config.read_text()).get("model_type")
            except (OSError, ValueError) as error:
                return f"{config} is not readable JSON ({error})"
            if found != self.model_type:
                return f"{config} has model_type {found!r}, not {self.model_type!r}"
        return None


QWEN2_5_VL = CheckpointLayout(
    "a Qwen2.5-VL checkpoint folder",
    ("config.json", "tokenizer_config.json", "preprocessor_config.json"),
    model_type="qwen2_5_vl",
    marker="vans_vlm.json",
)
TOKENIZER = CheckpointLayout("a tokenizer folder", ("tokenizer_config.json",))
WAN2_1 = CheckpointLayout(
    "a Wan2.1 diffusers folder",
    (
        "model_index.json",
        "transformer/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "tokenizer",
    ),
    marker="vans_vdm.json",
)
CLIP = CheckpointLayout("a CLIPModel checkpoint folder", ("config.json", "tokenizer_config.json"), "clip")
VIDEO_MODEL = CheckpointLayout("a transformers video model folder (e.g. VideoMAE)", ("config.json",))
