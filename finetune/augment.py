"""Training-time image transforms: presets `none`, `light` and `heavy`.

They work on decoded uint8 (C, H, W) tensors and end with the model's own
normalisation. Historical prints are mostly black ink on paper, so grey-scale
is drawn often: the model should not lean on colour that a scan happens to
have. `none` resizes and centre-crops as the model's evaluation transform does.
"""

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as transforms

from services.errors import ConfigError

Preset = Literal["none", "light", "heavy"]
PRESETS: tuple[str, ...] = ("none", "light", "heavy")
Transform = Callable[[torch.Tensor], torch.Tensor]


def check_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown augmentation {name!r}: use one of {', '.join(PRESETS)}")
    return name  # type: ignore[return-value]


def train_transform(
    preset: str, size: int, mean: Sequence[float], std: Sequence[float]
) -> Transform:
    """The transform of one training image (uint8 tensor in, normalised float out)."""
    bicubic = InterpolationMode.BICUBIC
    steps: list[Callable[..., object]]
    match check_preset(preset):
        case "none":
            steps = [
                transforms.Resize(size, interpolation=bicubic, antialias=True),
                transforms.CenterCrop(size),
            ]
        case "light":
            steps = [
                transforms.RandomResizedCrop(
                    size, scale=(0.8, 1.0), interpolation=bicubic, antialias=True
                ),
                transforms.RandomApply([_rotation(5)], 0.3),
                transforms.RandomApply([transforms.ColorJitter(0.2, 0.2, 0.1)], 0.5),
                transforms.RandomGrayscale(0.3),
            ]
        case "heavy":
            steps = [
                transforms.RandomResizedCrop(
                    size, scale=(0.5, 1.0), interpolation=bicubic, antialias=True
                ),
                transforms.RandomApply([_rotation(15)], 0.5),
                transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.3, 0.05)], 0.8),
                transforms.RandomGrayscale(0.5),
                transforms.RandomApply([transforms.GaussianBlur(5, sigma=(0.1, 1.5))], 0.3),
            ]
    steps += [
        transforms.ToDtype(torch.float32, scale=True),
        transforms.Normalize(list(mean), list(std)),
    ]
    return transforms.Compose(steps)


def _rotation(degrees: float) -> transforms.RandomRotation:
    # Corners are filled with white: prints and maps sit on paper.
    return transforms.RandomRotation(degrees, interpolation=InterpolationMode.BILINEAR, fill=255)
