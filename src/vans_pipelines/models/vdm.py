"""The video diffusion model: a Wan2.1-style flow-matching transformer through diffusers.

``WanTransformer3DModel`` denoises VAE latents (``AutoencoderKLWan``) of the answer clip, conditioned on
(a) the caption, through a UMT5 text encoder (the tiny default is a one-layer UMT5 over the project's own
tokenizer), and (b) the visual context: VAE latents of the context clip's last ``context_frames`` frames,
channel-concatenated to the noisy latents with a mask channel, image-to-video style, so the answer
continues the user's scene. Rectified flow: ``x_t = (1 - t) x_0 + t noise``, the transformer predicts
``noise - x_0``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from transformers import PreTrainedTokenizerBase, UMT5EncoderModel

from vans_pipelines.models.compile import CompiledParts, compiler_available
from vans_pipelines.models.conditioning import Conditioning, with_context_channels
from vans_pipelines.models.dedup import first_occurrences
from vans_pipelines.models.flow_matching import FlowMatchingRecipe
from vans_pipelines.models.lora import (
    AdaptedModel,
    LoraSpec,
    load_lora,
)
from vans_pipelines.models.vdm_folder import (
    META_FILE,
    REFERENCED_PARTS,
    PartSource,
    load_parts,
    part_reference,
    weights_signature,
)
from vans_pipelines.models.wan_vae import (
    latent_frames,
    to_model_video,
    to_uint8_video,
    use_fast_vae_paths,
    vae_factors,
)

PLAIN_FLOW = FlowMatchingRecipe()


@dataclass
class VideoDiffusionModel(AdaptedModel):
    """Transformer + VAE + text encoder + tokenizer + sampling settings, saved and loaded as one folder."""

    transformer: WanTransformer3DModel
    vae: AutoencoderKLWan
    text_encoder: UMT5EncoderModel
    tokenizer: PreTrainedTokenizerBase
    conditioning: Conditioning = field(default_factory=Conditioning)
    base_path: str | None = None  # AdaptedModel's; the VDM derives its base reference from ``sources``
    lora: LoraSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # where the frozen parts (and the transformer, as a LoRA base) were loaded from: see save_pretrained
    sources: dict[str, PartSource] = field(default_factory=dict)

    def __post_init__(self) -> None:
        use_fast_vae_paths(self.vae)  # the frame-folded VAE passes ~5x faster; same numbers to rounding
        self._compiled = CompiledParts()  # see compile

    def compile(self, enabled: bool = True) -> None:
        """Run the transformer and the VAE decoder through ``torch.compile`` (inductor) from now on, in
        copies too. The numbers equal eager ones up to float rounding, not bitwise; each new shape, grad
        mode or train / eval mode compiles once per process. Nothing saved changes. Without a C++
        compiler on the CPU (inductor needs one) it stays eager, with one warning."""
        enabled = enabled and compiler_available(self.device)
        parts = {"transformer": self.transformer, "decoder": self.vae.decoder}
        self._compiled.use(parts if enabled else {})

    # ------------------------------------------------------------------ latents
    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def _latent_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.vae.config.latents_mean, device=like.device, dtype=like.dtype)
        std = torch.tensor(self.vae.config.latents_std, device=like.device, dtype=like.dtype)
        return mean.view(1, -1, 1, 1, 1), std.view(1, -1, 1, 1, 1)

    def encode(self, video: torch.Tensor, *, sample: bool = False) -> torch.Tensor:
        """``[B, 3, T, H, W]`` in [-1, 1] → normalised latents ``[B, z, T', H/s, W/s]``.

        A VAE without temporal compression encodes frame by frame (the causal VAE's single-frame path),
        which is also how context frames are encoded."""
        _, temporal = vae_factors(self.vae)
        b, _, t = video.shape[:3]
        if temporal == 1 or t == 1:
            frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, 3, 1, *video.shape[3:])
            dist = self.vae.encode(frames).latent_dist
            z = dist.sample() if sample else dist.mode()
            z = z.reshape(b, t, *z.shape[1:]).squeeze(3).permute(0, 2, 1, 3, 4)
        else:
            dist = self.vae.encode(video).latent_dist
            z = dist.sample() if sample else dist.mode()
        mean, std = self._latent_stats(z)
        return (z - mean) / std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents → video ``[B, 3, T, H, W]`` in [-1, 1]."""
        mean, std = self._latent_stats(latents)
        z = latents * std + mean
        _, temporal = vae_factors(self.vae)
        if temporal == 1:
            b, c, t = z.shape[:3]
            frames = z.permute(0, 2, 1, 3, 4).reshape(b * t, c, 1, *z.shape[3:])
            x = self._vae_decode(frames)
            return x.reshape(b, t, 3, *x.shape[3:]).permute(0, 2, 1, 3, 4)
        return self._vae_decode(z)

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        spatial, temporal = vae_factors(self.vae)
        return (self.vae.config.z_dim, latent_frames(frames, temporal), height // spatial, width // spatial)

    # ------------------------------------------------------------------ conditions
    def encode_text(self, captions: Sequence[str]) -> torch.Tensor:
        """Caption embeddings ``[B, L, D]``, padding positions zeroed (as Wan's pipeline does)."""
        tokens = self.tokenizer(
            list(captions),
            padding="max_length",
            max_length=self.conditioning.text_max_length,
            truncation=True,
            return_tensors="pt",
            add_special_tokens=True,
        )
        ids, mask = tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device)
        hidden = self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)

    def encode_context(self, context: np.ndarray | torch.Tensor, latent_frames: int) -> torch.Tensor:
        """Context clips (uint8 ``[B, T, H, W, 3]``) → ``[B, z + 1 (+ z), T', h, w]``: latents of the
        last ``context_frames`` frames (each encoded alone) in the first latent slots, a mask channel of
        ones there, zeros elsewhere; with ``repeat_last_frame``, the last frame's latents in every slot."""
        n = self.conditioning.context_frames
        if n > latent_frames and self.conditioning.context_slots == "channels":
            raise ValueError(f"context_frames={n} exceeds the answer's {latent_frames} latent frames")
        return self.context_condition(self.encode_context_latents(context), latent_frames)

    def encode_context_latents(self, context: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Latents ``[B, z, n, h, w]`` of the context clips' last ``n = context_frames`` frames, each
        encoded alone (so a VAE that compresses time keeps one latent per context frame)."""
        n = self.conditioning.context_frames
        clip = torch.as_tensor(context)[:, -n:]
        if clip.shape[1] < n:
            raise ValueError(f"context clips have {clip.shape[1]} frames; context_frames={n}")
        video = to_model_video(clip).to(self.device, self.vae.dtype)
        b = video.shape[0]
        latents = self.encode(video.permute(0, 2, 1, 3, 4).reshape(b * n, 3, 1, *video.shape[3:]))
        return latents.reshape(b, n, *latents.shape[1:]).squeeze(3).permute(0, 2, 1, 3, 4)

    def context_condition(self, latents: torch.Tensor, latent_frames: int) -> torch.Tensor:
        """The condition of :meth:`encode_context` from the context frames' latents ``[B, z, n, h, w]``;
        with ``context_slots: prefix`` it has ``n`` more slots, the context's, before the answer's."""
        b, z, n, h, w = latents.shape
        slots = latent_frames + (n if self.conditioning.context_slots == "prefix" else 0)
        cond = latents.new_zeros(b, self.conditioning.condition_channels(z), slots, h, w)
        cond[:, :z, :n] = latents
        cond[:, z, :n] = 1.0
        if self.conditioning.repeat_last_frame:
            cond[:, z + 1 :] = latents[:, :, -1:]
        return cond

    @torch.no_grad()
    def normalise_latents(self, frames: np.ndarray | torch.Tensor) -> None:
        """Set the VAE's ``latents_mean`` / ``latents_std`` (the fields Wan2.1's VAE config carries) to
        the per-channel statistics of these frames' latents (uint8 ``[N, H, W, 3]``), so that flow
        matching works on unit-scale latents. A freshly fitted tiny VAE's latents have std 0.2-0.5 and
        offsets of the same size: against unit noise, samples came out as coloured speckle."""
        video = to_model_video(torch.as_tensor(frames)[:, None]).to(self.device, self.vae.dtype)
        z = self.vae.encode(video).latent_dist.mode()  # raw latents, before any normalisation
        mean, std = z.mean(dim=(0, 2, 3, 4)), z.std(dim=(0, 2, 3, 4)).clamp_min(1e-4)
        self.vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())

    def velocity(
        self,
        latents: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        condition: torch.Tensor,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """The flow prediction (``noise - x_0``) at noise level ``sigma`` in [0, 1], guided by the caption
        with scale ``guidance`` (default ``conditioning.guidance_scale``; 1: the transformer alone):
        ``v(empty) + scale (v(caption) - v(empty))``, both halves in one batch."""
        scale = self.conditioning.guidance_scale if guidance is None else guidance
        transformer = self._compiled.get("transformer", self.transformer)
        b = latents.shape[0]
        if scale != 1.0:
            null = self.encode_text([""]).expand(b, -1, -1)
            latents, condition = latents.repeat(2, 1, 1, 1, 1), condition.repeat(2, 1, 1, 1, 1)
            sigma, text = sigma.expand(b).repeat(2), torch.cat([text, null])
        prefix = condition.shape[2] - latents.shape[2]  # context slots before the answer's (prefix mode)
        padded = torch.nn.functional.pad(latents, (0, 0, 0, 0, prefix, 0)) if prefix else latents
        hidden = torch.cat([padded, condition.to(latents.dtype)], dim=1)
        timestep = (sigma * 1000.0).to(latents.dtype).expand(latents.shape[0])
        v = transformer(hidden, timestep, text.to(latents.dtype), return_dict=False)[0][:, :, prefix:]
        return v if scale == 1.0 else v[b:] + scale * (v[:b] - v[b:])

    def _vae_decode(self, z: torch.Tensor) -> torch.Tensor:
        """The VAE's decode, through the compiled decoder when there is one (swapped in for the call:
        diffusers' decode calls ``vae.decoder`` itself)."""
        decoder = self.vae.decoder
        compiled = self._compiled.get("decoder", decoder)
        if compiled is decoder:
            return self.vae.decode(z).sample
        self.vae.decoder = compiled
        try:
            return self.vae.decode(z).sample
        finally:
            self.vae.decoder = decoder

    # ------------------------------------------------------------------ training and sampling
    def shift_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        s = self.conditioning.shift
        return s * sigma / (1 + (s - 1) * sigma)

    def flow_matching_loss(
        self,
        target: np.ndarray | torch.Tensor,
        context: np.ndarray | torch.Tensor,
        captions: Sequence[str],
        generator: torch.Generator | None = None,
        recipe: FlowMatchingRecipe = PLAIN_FLOW,
    ) -> torch.Tensor:
        """Rectified-flow loss on one batch: ``|v(x_t, t) - (noise - x_0)|²`` at a shifted ``t`` drawn
        as ``recipe`` says (uniform by default), weighted per sample as it says."""
        with torch.no_grad():
            x0 = self.encode(to_model_video(target).to(self.device, self.vae.dtype))
            cond = self.encode_context(context, x0.shape[2])
        return self.latent_flow_matching_loss(x0, cond, captions, generator, recipe)

    def latent_flow_matching_loss(
        self,
        x0: torch.Tensor,
        cond: torch.Tensor,
        captions: Sequence[str],
        generator: torch.Generator | None = None,
        recipe: FlowMatchingRecipe = PLAIN_FLOW,
    ) -> torch.Tensor:
        """:meth:`flow_matching_loss` from the target's latents and the context condition (e.g. cached)."""
        text = self.encode_text(recipe.drop_captions(list(captions), generator))
        b = x0.shape[0]
        sigma = self.shift_sigma(recipe.draw(b, generator).to(self.device))
        noise = torch.randn(x0.shape, generator=generator, device="cpu").to(self.device, x0.dtype)
        s = sigma.view(b, 1, 1, 1, 1).to(x0.dtype)
        x_t = (1 - s) * x0 + s * noise
        v = self.velocity(x_t, sigma, text, cond, guidance=1.0)
        if recipe.loss_weighting == "none":
            return torch.nn.functional.mse_loss(v.float(), (noise - x0).float())
        per_sample = (v.float() - (noise - x0).float()).pow(2).flatten(1).mean(1)
        return (recipe.weights(sigma.float()) * per_sample).mean()

    def sigmas(self, num_steps: int) -> torch.Tensor:
        """The sampler's noise levels, 1 → 0 (``num_steps + 1`` values), from diffusers' flow scheduler."""
        scheduler = FlowMatchEulerDiscreteScheduler(shift=self.conditioning.shift)
        scheduler.set_timesteps(num_steps)
        return scheduler.sigmas.float()

    def prepare(
        self,
        captions: Sequence[str],
        context: np.ndarray | torch.Tensor,
        frames: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(initial noise, text embeddings, context condition) for sampling ``len(captions)`` clips. A
        caption or context clip that occurs several times (a GRPO group's) is encoded once."""
        shape = (len(captions), *self.latent_shape(frames, height, width))
        noise = torch.randn(shape, generator=generator, device="cpu").to(self.device, self.transformer.dtype)
        context = torch.as_tensor(context)
        text_rows, text_index = first_occurrences(list(captions))
        clip_rows, clip_index = first_occurrences(
            [clip.numpy().tobytes() for clip in context[:, -self.conditioning.context_frames :]]
        )
        text = self.encode_text([captions[i] for i in text_rows])[text_index.to(self.device)]
        cond = self.encode_context(context[clip_rows], shape[2])[clip_index.to(self.device)]
        return noise, text, cond

    @torch.no_grad()
    def sample(
        self,
        captions: Sequence[str],
        context: np.ndarray | torch.Tensor,
        *,
        frames: int,
        num_steps: int = 10,
        seed: int = 0,
        noise: torch.Tensor | None = None,
    ) -> np.ndarray:
        """Answer clips (uint8 ``[B, T, H, W, 3]``) by the flow ODE with diffusers' Euler scheduler, from
        ``noise`` when given (e.g. one draw shared by a group), else from a draw seeded by ``seed``."""
        context = torch.as_tensor(context)
        height, width = context.shape[2:4]
        generator = torch.Generator().manual_seed(seed)
        latents, text, cond = self.prepare(captions, context, frames, height, width, generator)
        if noise is not None:
            if noise.shape != latents.shape:
                raise ValueError(f"noise of shape {tuple(noise.shape)}; expected {tuple(latents.shape)}")
            latents = noise.to(latents.device, latents.dtype)
        scheduler = FlowMatchEulerDiscreteScheduler(shift=self.conditioning.shift)
        scheduler.set_timesteps(num_steps)
        for t in scheduler.timesteps:
            sigma = (t / 1000.0).to(self.device).expand(latents.shape[0])
            v = self.velocity(latents, sigma, text, cond)
            latents = scheduler.step(v, t, latents, return_dict=False)[0]
        return to_uint8_video(self.decode(latents))

    # ------------------------------------------------------------------ modules, adapters, persistence
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"transformer": self.transformer, "vae": self.vae, "text_encoder": self.text_encoder}

    def to(self, device: torch.device | str) -> VideoDiffusionModel:
        for module in self.modules().values():
            module.to(device)
        return self

    def adapted_module(self) -> torch.nn.Module:
        return self.transformer

    def save_pretrained(self, path: str | Path) -> None:
        """diffusers' folder layout (transformer/, vae/, text_encoder/, tokenizer/) plus ``vans_vdm.json``.
        With LoRA the transformer is stored as an adapter over its base: a reference to the folder it was
        loaded from when its weights are unchanged, else a copy. The VAE and the text encoder are likewise
        referenced (by a path relative to ``path`` and their weights' signature) when unchanged since
        loading, else written."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        build_base = partial(WanTransformer3DModel.from_config, deepcopy(self.transformer.config))
        base_ref = self.save_weights(path, "transformer", "transformer_adapter", "transformer", build_base)
        if base_ref == "transformer":  # a copy: this folder's own transformer/ (diffusers' subfolder)
            base_ref = "."
        parts = {}
        for part in REFERENCED_PARTS:
            reference = self._reference(part, path)
            if reference is None:
                getattr(self, part).save_pretrained(path / part)
            else:
                shutil.rmtree(path / part, ignore_errors=True)
                parts[part] = reference
        self.tokenizer.save_pretrained(path / "tokenizer")
        meta = {
            "conditioning": asdict(self.conditioning),
            "transformer_base": base_ref,
            "parts": parts,
            "extra": self.extra,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    def base_reference(self, folder: Path) -> str | None:
        """The transformer's base weights are referenced like the other parts: the folder it was loaded
        from, relative to ``folder``, while its weights (adapter aside) are unchanged."""
        reference = self._reference("transformer", folder)
        return None if reference is None else reference["path"]

    def _reference(self, part: str, path: Path) -> dict[str, str] | None:
        return part_reference(part, getattr(self, part), self.sources.get(part), path)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, conditioning: Conditioning | None = None, dtype: torch.dtype | None = None
    ) -> VideoDiffusionModel:
        """A folder written by :meth:`save_pretrained`, or a Wan2.1 diffusers checkpoint (text-to-video
        ones get zero-initialised input channels for the context condition, so they start unchanged).
        Referenced parts are loaded from the folders they name and checked against their signature."""
        local = Path(path)
        stored = load_parts(local, dtype)
        transformer, meta = stored.transformer, stored.meta
        if conditioning is None:
            conditioning = Conditioning(**meta["conditioning"]) if meta else Conditioning()
        z = stored.vae.config.z_dim
        wanted = z + conditioning.condition_channels(z)
        if transformer.config.in_channels < wanted:
            transformer = with_context_channels(transformer, wanted)
        # a LoRA base that can be referenced (loading re-adds the zero context channels of a T2V folder)
        sources = {
            **stored.sources,
            "transformer": PartSource(str(stored.transformer_root.resolve()), weights_signature(transformer)),
        }
        parts = (transformer, stored.vae, stored.text_encoder, stored.tokenizer)
        vdm = cls(*parts, conditioning, extra=meta.get("extra", {}), sources=sources)
        if meta.get("transformer_base") is not None:
            vdm.lora = load_lora(transformer, local / "transformer_adapter")
        return vdm
