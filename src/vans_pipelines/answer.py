"""``vans answer``: what the system is for. Give it a video and a question; it prints the predicted
reasoning and caption of the next event and writes the generated answer video.

    vans answer --video clip.mp4 --question "What happens next?" --out answer.mp4 [--checkpoints DIR]

The checkpoints are a run's ``data/06_models`` folder: the Joint-GRPO models (``grpo_vlm``, ``grpo_vdm``)
when present, else the SFT ones. The clip geometry (context / answer frames, size, fps) comes from the
project's ``ingest.clip`` parameters, which the models were trained on; flags override it.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vans_pipelines.models.placement import CPU, PRECISIONS, Inference
from vans_pipelines.video.io import VideoError, decode_resampled, encode_video

DEFAULT_CHECKPOINTS = Path("data/06_models")


class AnswerError(Exception):
    """Bad input to ``vans answer``; the message says what and where."""


@dataclass(frozen=True)
class ClipGeometry:
    context_frames: int
    answer_frames: int
    height: int
    width: int
    fps: float


def _project_parameters(project: Path) -> dict | None:
    conf = project / "conf"
    if not (conf / "base").is_dir():
        return None
    from kedro.config import OmegaConfigLoader

    from vans_pipelines.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(conf), **CONFIG_LOADER_ARGS)  # as `kedro run` reads it
    return dict(loader["parameters"])


def project_geometry(project: Path) -> ClipGeometry | None:
    """The ``ingest.clip`` settings of the Kedro project at ``project`` (None when it is not one)."""
    parameters = _project_parameters(project)
    if parameters is None:
        return None
    from vans_pipelines.params import parse_section

    clip = parse_section("ingest", parameters.get("ingest")).clip
    return ClipGeometry(clip.context_frames, clip.target_frames, clip.height, clip.width, clip.fps)


def project_inference(project: Path, device: str | None = None, precision: str | None = None) -> Inference:
    """Where to run: the project's ``run.inference`` (the defaults outside a project), with ``device`` /
    ``precision`` overriding it; ``AnswerError`` when the device is not usable here."""
    from vans_pipelines.params import parse_section

    parameters = _project_parameters(project) or {}
    settings = parse_section("run", parameters.get("run") or {}).inference
    try:
        return Inference.resolve(device or settings.device, precision or settings.precision)
    except ValueError as err:
        raise AnswerError(f"--device: {err}") from None


def find_checkpoints(folder: Path) -> tuple[Path, Path]:
    """(VLM folder, VDM folder): Joint-GRPO's when both exist, else SFT's."""
    if not folder.is_dir():
        raise AnswerError(
            f"checkpoints folder {folder} does not exist; run `kedro run` first or pass --checkpoints"
        )
    for vlm, vdm in (("grpo_vlm", "grpo_vdm"), ("sft_vlm", "sft_vdm")):
        if (folder / vlm).is_dir() and (folder / vdm).is_dir():
            return folder / vlm, folder / vdm
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    raise AnswerError(
        f"no trained models in {folder}: need grpo_vlm + grpo_vdm (Joint-GRPO) or sft_vlm + sft_vdm; "
        f"found {present or 'nothing'}. Run `kedro run` first or pass --checkpoints"
    )


def read_context(video: Path, geometry: ClipGeometry) -> np.ndarray:
    """The last ``context_frames`` of ``video`` at the models' fps and size (the first frame repeated when
    the video is shorter)."""
    if not video.is_file():
        raise AnswerError(f"video {video} does not exist")
    try:
        frames = decode_resampled(
            str(video), fps=geometry.fps, height=geometry.height, width=geometry.width
        ).frames
    except VideoError as err:
        raise AnswerError(f"cannot read video {video}: {err}") from None
    frames = frames[-geometry.context_frames :]
    if len(frames) < geometry.context_frames:
        frames = np.concatenate(
            [np.repeat(frames[:1], geometry.context_frames - len(frames), axis=0), frames]
        )
    return frames


@dataclass(frozen=True)
class VideoAnswer:
    reasoning: str
    caption: str
    well_formed: bool
    video: np.ndarray  # uint8 [T, H, W, 3]
    models: tuple[str, str]
    device: str = "cpu"


def answer(
    video: Path,
    question: str,
    *,
    checkpoints: Path = DEFAULT_CHECKPOINTS,
    geometry: ClipGeometry,
    num_steps: int = 10,
    seed: int = 0,
    max_new_tokens: int = 64,
    inference: Inference = CPU,
) -> VideoAnswer:
    """The cascade on one input, where ``inference`` says: the VLM reasons and captions, the VDM renders
    the caption with the context."""
    vlm_dir, vdm_dir = find_checkpoints(checkpoints)
    context = read_context(video, geometry)
    from vans_pipelines.models.answer_format import parse_answer
    from vans_pipelines.models.vdm import VideoDiffusionModel
    from vans_pipelines.models.vlm import VisionLanguageModel

    vlm = VisionLanguageModel.from_pretrained(vlm_dir)
    vlm.model.eval()
    with inference.running(vlm):
        text = vlm.generate([context], [question], max_new_tokens=max_new_tokens).texts[0]
    parsed = parse_answer(text)
    vlm.to("cpu")  # the VDM gets the accelerator to itself
    vdm = VideoDiffusionModel.from_pretrained(vdm_dir)
    for part in vdm.modules().values():
        part.eval()
    with inference.running(vdm):
        clip = vdm.sample(
            [parsed.caption], context[None], frames=geometry.answer_frames, num_steps=num_steps, seed=seed
        )
    return VideoAnswer(
        parsed.reasoning,
        parsed.caption,
        parsed.well_formed,
        clip[0],
        (vlm_dir.name, vdm_dir.name),
        inference.device,
    )


def write_video(frames: np.ndarray, out: Path, fps: float) -> None:
    """H.264 mp4 (or lossless when the name ends in .mkv), written beside ``out`` and renamed into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if out.suffix.lower() == ".mkv":
            encode_video(frames, str(tmp), fps=fps, container_format="matroska")
        else:
            encode_video(frames, str(tmp), fps=fps, codec="libx264")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vans", description="Video-as-Answer with a trained VANS run.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("answer", help="answer a question about a video with a generated video")
    p.add_argument("--video", type=Path, required=True, help="the context video (any format PyAV reads)")
    p.add_argument("--question", required=True, help='e.g. "What happens next?" or "What should I do next?"')
    p.add_argument("--out", type=Path, required=True, help="where to write the answer video (.mp4)")
    p.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS, help="a run's data/06_models")
    p.add_argument(
        "--project", type=Path, default=Path("."), help="the Kedro project whose clip settings apply"
    )
    p.add_argument("--steps", type=int, default=10, help="diffusion sampling steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument(
        "--device", default=None, help="auto, cpu, cuda, cuda:1, mps (default: the project's run.inference)"
    )
    p.add_argument(
        "--precision", choices=PRECISIONS, default=None, help="default: the project's run.inference"
    )
    for name, kind in (
        ("context-frames", int),
        ("answer-frames", int),
        ("height", int),
        ("width", int),
        ("fps", float),
    ):
        p.add_argument(f"--{name}", type=kind, default=None, help="override the project's ingest.clip value")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        geometry = project_geometry(args.project)
        overrides = {
            "context_frames": args.context_frames,
            "answer_frames": args.answer_frames,
            "height": args.height,
            "width": args.width,
            "fps": args.fps,
        }
        if geometry is None:
            missing = [k for k, v in overrides.items() if v is None]
            if missing:
                raise AnswerError(
                    f"{args.project} is not a VANS project (no conf/base): pass --project or "
                    + ", ".join(f"--{k.replace('_', '-')}" for k in missing)
                )
            geometry = ClipGeometry(**overrides)
        else:
            geometry = ClipGeometry(
                **{**geometry.__dict__, **{k: v for k, v in overrides.items() if v is not None}}
            )
        result = answer(
            args.video,
            args.question,
            checkpoints=args.checkpoints,
            geometry=geometry,
            num_steps=args.steps,
            seed=args.seed,
            max_new_tokens=args.max_new_tokens,
            inference=project_inference(args.project, args.device, args.precision),
        )
        write_video(result.video, args.out, geometry.fps)
    except AnswerError as err:
        print(f"vans answer: error: {err}", file=sys.stderr)
        return 2
    print(f"models: {result.models[0]} + {result.models[1]} on {result.device}")
    print(f"reasoning: {result.reasoning}")
    print(f"caption: {result.caption}")
    if not result.well_formed:
        print("(the VLM's output did not keep the [Think]/[Ans] format; the caption is its best guess)")
    print(f"video: {args.out} ({len(result.video)} frames at {geometry.fps:g} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
