"""Decoding the examples' images once, through ingest's safe, parallel loader.

Training images are kept in memory as uint8 tensors, shrunk so their short
side is a little over the model's input size (augmentation crops from them);
evaluation images go through the model's own transform, exactly as ingest
feeds them to the model. Images that cannot be read are reported and their
examples left out.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from finetune.data import Example
from ingest.images import ImageLoader
from ingest.report import ErrorReport
from services.settings import Settings

# Short side of a kept training image relative to the model's input size.
HEADROOM = 1.15


@dataclass(frozen=True)
class Shrink:
    """PIL image -> uint8 (C, H, W) tensor with short side `size` (picklable for workers)."""

    size: int

    def __call__(self, image: Image.Image) -> torch.Tensor:
        width, height = image.size
        scale = self.size / min(width, height)
        if scale < 1:
            image = image.resize(
                (max(1, round(width * scale)), max(1, round(height * scale))),
                Image.Resampling.BICUBIC,
            )
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1)


def decode_examples(
    examples: Sequence[Example],
    settings: Settings,
    preprocess: Callable[[Image.Image], torch.Tensor],
    target: int,
    report: ErrorReport,
) -> tuple[list[Example], list[torch.Tensor]]:
    """The examples whose image decodes, and their tensors in the same order."""
    found: dict[int, torch.Tensor] = {}
    with ImageLoader.from_settings(settings, preprocess, target) as loader:
        jobs = ((index, example.image) for index, example in enumerate(examples))
        for decoded in loader.load(jobs):
            if decoded.pixels is None:
                example = examples[decoded.index]
                report.add(
                    "image",
                    decoded.error or "unreadable",
                    record_id=example.id,
                    image=example.image.location,
                )
            else:
                found[decoded.index] = decoded.pixels
    kept = sorted(found)
    return [examples[index] for index in kept], [found[index] for index in kept]


def training_images(
    examples: Sequence[Example], settings: Settings, size: int, report: ErrorReport
) -> tuple[list[Example], list[torch.Tensor]]:
    """Decoded, shrunk uint8 images for training."""
    shrink = Shrink(round(size * HEADROOM))
    kept, tensors = decode_examples(examples, settings, shrink, size, report)
    # The loader hands pixels back as float; the values are whole numbers.
    return kept, [tensor.to(torch.uint8) for tensor in tensors]


def evaluation_images(
    examples: Sequence[Example],
    settings: Settings,
    preprocess: Callable[[Image.Image], torch.Tensor],
    size: int,
    report: ErrorReport,
) -> tuple[list[Example], torch.Tensor]:
    """Examples and their (N, C, H, W) model-ready pixels for evaluation."""
    kept, tensors = decode_examples(examples, settings, preprocess, size, report)
    if not tensors:
        return [], torch.zeros(0, 3, size, size)
    return kept, torch.stack(tensors)
