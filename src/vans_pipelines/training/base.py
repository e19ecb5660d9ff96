"""What every training module shares: the optimiser from :class:`OptimConfig`, grad-norm logging and
TensorBoard text / video samples."""

from __future__ import annotations

import io
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from PIL import Image

from vans_pipelines.training.trainer import OptimConfig, make_optimizer


class TrainingModule(L.LightningModule):
    """Subclasses set ``self.optim`` and list their trainable modules by registering them as attributes.
    Parts they use but do not register (a frozen renderer, the scorer, a VAE) are named by
    :meth:`unregistered_parts`; they follow the module to its device for training and back after."""

    optim: OptimConfig

    def unregistered_parts(self) -> Sequence[object]:
        """Objects with ``.to(device)`` the module moves itself (Lightning moves only registered ones)."""
        return ()

    def _move_unregistered(self) -> None:
        for part in self.unregistered_parts():
            part.to(self.device)

    def on_fit_start(self) -> None:
        self._move_unregistered()

    def on_fit_end(self) -> None:
        # Lightning has just moved the registered modules back (to the CPU after GPU training): the rest
        # follows, so the model is on one device again when training returns.
        self._move_unregistered()

    def configure_optimizers(self):
        return make_optimizer(list(self.parameters()), self.optim, self.trainer.max_steps)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        norms = [p.grad.detach().norm(2) for p in self.parameters() if p.grad is not None]
        if norms:
            self.log("train/grad_norm", torch.stack(norms).norm(2), on_step=True, prog_bar=False)

    # ------------------------------------------------------------------ TensorBoard samples
    def _tensorboard(self):
        logger = self.logger
        return getattr(logger, "experiment", None) if logger is not None else None

    def log_texts(self, tag: str, lines: Sequence[str]) -> None:
        writer = self._tensorboard()
        if writer is not None and self.trainer.is_global_zero:
            writer.add_text(tag, "\n\n".join(f"`{line}`" for line in lines), self.global_step)

    def log_videos(self, tag: str, clips: Sequence[np.ndarray], fps: float) -> None:
        """Clips (uint8 ``[T, H, W, 3]``) side by side as one animated GIF in TensorBoard's image tab."""
        writer = self._tensorboard()
        if writer is None or not self.trainer.is_global_zero or not len(clips):
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        strip = np.concatenate([np.asarray(c) for c in clips], axis=2)  # [T, H, W * n, 3]
        scale = max(1, 128 // strip.shape[1])
        frames = [
            Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in strip
        ]
        buffer = io.BytesIO()
        frames[0].save(
            buffer, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0
        )
        image = Summary.Image(
            height=frames[0].height,
            width=frames[0].width,
            colorspace=3,
            encoded_image_string=buffer.getvalue(),
        )
        writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), self.global_step)
