"""One optimisation step of symmetric InfoNCE, with gradient accumulation.

Accumulation keeps every negative of the whole batch: features of all
micro-batches are computed first without gradients, then each micro-batch is
run again with gradients against the cached features of the others (as
open_clip's trainer does), so N micro-batches give the gradient of one large
batch, not of N small ones.
"""

import math
from contextlib import AbstractContextManager, nullcontext

import torch
from open_clip import ClipLoss

MAX_LOGIT_SCALE = math.log(100)


def autocast_for(device: torch.device) -> AbstractContextManager[object]:
    """bf16 autocast on a GPU; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class ContrastiveStep:
    """Forward, symmetric InfoNCE (learnable temperature), backward, AdamW, schedule.

    Example:
        >>> step = ContrastiveStep(model, optimizer, scheduler, device)  # doctest: +SKIP
        >>> loss = step(images, tokens)  # a detached scalar tensor  # doctest: +SKIP
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        accumulate: int = 1,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device
        self.accumulate = max(1, accumulate)
        self.loss = ClipLoss(cache_labels=True)

    def __call__(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking)
        texts = texts.to(self.device, non_blocking=non_blocking)
        if self.accumulate == 1 or images.shape[0] < self.accumulate:
            loss = self._whole(images, texts)
        else:
            loss = self._accumulated(images, texts)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        with torch.no_grad():
            self._logit_scale().clamp_(0, MAX_LOGIT_SCALE)
        return loss

    def _logit_scale(self) -> torch.Tensor:
        scale: torch.Tensor = self.model.logit_scale  # type: ignore[assignment]
        return scale

    def _whole(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        with autocast_for(self.device):
            image_features, text_features, scale = self.model(images, texts)[:3]
            loss: torch.Tensor = self.loss(image_features, text_features, scale)
        loss.backward()
        return loss.detach()

    def _accumulated(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        image_chunks = images.chunk(self.accumulate)
        text_chunks = texts.chunk(self.accumulate)
        with torch.no_grad(), autocast_for(self.device):
            cached = [self.model(i, t)[:2] for i, t in zip(image_chunks, text_chunks, strict=True)]
        loss = torch.zeros((), device=self.device)
        for index, (chunk_images, chunk_texts) in enumerate(
            zip(image_chunks, text_chunks, strict=True)
        ):
            with autocast_for(self.device):
                image_features, text_features, scale = self.model(chunk_images, chunk_texts)[:3]
                all_images = torch.cat(
                    [f[0] for f in cached[:index]]
                    + [image_features]
                    + [f[0] for f in cached[index + 1 :]]
                )
                all_texts = torch.cat(
                    [f[1] for f in cached[:index]]
                    + [text_features]
                    + [f[1] for f in cached[index + 1 :]]
                )
                # The temperature's gradient is taken once, not once per micro-batch.
                loss = self.loss(all_images, all_texts, scale if index == 0 else scale.detach())
            loss.backward()
        return loss.detach()
