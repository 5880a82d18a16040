"""Optimiser, learning-rate schedule and tower locking for contrastive fine-tuning."""

import math
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

from services.errors import ConfigError


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`.

    >>> [round(lr_factor(s, 2, 6), 3) for s in range(7)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on matrices only; gains, biases, embeddings of position and scale spared."""
    decay: list[torch.nn.Parameter] = []
    spared: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = (
            param.ndim < 2
            or "bias" in name
            or "ln" in name
            or "bn" in name
            or "logit_scale" in name
            or "embedding" in name
        )
        (spared if no_decay else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": spared, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; the fused kernel on a GPU."""
    groups = param_groups(model, weight_decay)
    if not any(group["params"] for group in groups):
        raise ConfigError("every parameter is locked: unlock a tower or some of its layers")
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, eps=1e-8, fused=fused)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: lr_factor(step, warmup, total))


@dataclass(frozen=True)
class LockConfig:
    """Which parts stay frozen. `*_layers` freezes the embeddings and the first N blocks."""

    image: bool = False
    text: bool = False
    image_layers: int = 0
    text_layers: int = 0

    def describe(self) -> str:
        parts = [
            "image tower" if self.image else "",
            "text tower" if self.text else "",
            f"first {self.image_layers} image layers"
            if self.image_layers and not self.image
            else "",
            f"first {self.text_layers} text layers" if self.text_layers and not self.text else "",
        ]
        return ", ".join(part for part in parts if part) or "nothing"


def _blocks(tower: torch.nn.Module | None, what: str) -> int:
    resblocks = getattr(getattr(tower, "transformer", None), "resblocks", None)
    if resblocks is None:
        raise ConfigError(
            f"the {what} tower of this model is not a transformer: lock all of it or none"
        )
    return len(resblocks)


def lock_towers(model: torch.nn.Module, lock: LockConfig) -> None:
    """Freeze towers or their first layers with open_clip's own locking.

    open_clip counts groups from the end (embeddings, each block, the last block
    with its norm, the projection), so "the first N blocks" becomes "all but the
    last blocks + 1 groups unlocked".
    """
    if lock.image or lock.image_layers:
        visual = getattr(model, "visual", None)
        unlocked = 0
        if not lock.image:
            blocks = _blocks(visual, "image")
            if not 0 < lock.image_layers <= blocks:
                raise ConfigError(f"the image tower has {blocks} layers: lock 1 to {blocks}")
            unlocked = blocks + 1 - lock.image_layers
        model.lock_image_tower(unlocked_groups=unlocked)  # type: ignore[operator]
    if lock.text or lock.text_layers:
        unlocked = 0
        if not lock.text:
            blocks = _blocks(getattr(model, "text", model), "text")
            if not 0 < lock.text_layers <= blocks:
                raise ConfigError(f"the text tower has {blocks} layers: lock 1 to {blocks}")
            unlocked = blocks + 1 - lock.text_layers
        model.lock_text_tower(unlocked_layers=unlocked)  # type: ignore[operator]
