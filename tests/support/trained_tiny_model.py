"""A tiny model fine-tuned for a few steps with the project's own fine-tuning.

Random weights map every image almost the same way, so tests that need a
model which tells images apart train one first, on image-caption pairs they
choose, through `finetune.run.finetune`: the result is a registry version
folder, loadable as `local-dir:` like any other model version.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from open_clip.model import CLIP

from finetune.captions import CaptionConfig
from finetune.prepare import DataSource
from finetune.run import FinetuneRequest, FinetuneSummary, finetune
from finetune.splits import SplitConfig
from finetune.train import TrainConfig
from services.model_folder import save_model_folder
from services.models import LOCAL_DIR
from services.settings import Settings
from services.wiring import Services

CONV_TINY_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "init_logit_scale": math.log(5),
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 64},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
"""A tiny CLIP whose image tower is a small ResNet, for learning near-duplicates.

Convolutions and pooling shrug off a shifted or slightly rotated pattern that
the 4x4-patch tiny ViT would have to learn at every phase (it never learns
cropped stripes in a few steps). A low starting temperature (logit scale 5,
not CLIP's 14) keeps the loss pulling each image towards its caption after
every training item is matched, so copies of one design end up close and
different designs far apart. Captions are short: 16 tokens are plenty.
"""


@dataclass(frozen=True)
class TrainedModel:
    """The version folder of a fine-tuned tiny model, and what its run reported."""

    folder: Path
    summary: FinetuneSummary

    @property
    def model(self) -> str:
        """The model setting that loads it."""
        return f"{LOCAL_DIR}{self.folder}"


def build_conv_tiny_model(folder: Path, seed: int = 0) -> Path:
    """`CONV_TINY_CFG` with seeded random weights, saved as a model folder."""
    torch.manual_seed(seed)
    return save_model_folder(CLIP(**CONV_TINY_CFG), CONV_TINY_CFG, folder)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread, then restore the count.

    A tiny model's operations are too small to share: on two busy cores a
    training step took several times longer with two threads than with one.
    One thread also gives the same arithmetic whatever the machine's cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_tiny_model(
    data_dir: Path,
    base_dir: Path,
    manifest: Path,
    config: TrainConfig,
    split: SplitConfig,
    version: str = "tiny-ft",
) -> TrainedModel:
    """Fine-tune the model folder `base_dir` on `manifest`'s captions, on the CPU.

    Args:
        data_dir: a data folder of its own (registry, run state).
        base_dir: the model folder to start from.
        manifest: id, image, caption rows; the catalogue caption is each
            item's only training caption.
        config: epochs, learning rate, augmentation, seed.
        split: how much of the manifest validation and test take.
        version: the version name in `data_dir`'s registry.
    """
    settings = Settings(
        data_dir=data_dir,
        model=f"{LOCAL_DIR}{base_dir}",
        device="cpu",
        batch_size=64,
        decode_workers=1,
        _env_file=None,
    )
    request = FinetuneRequest(
        version=version,
        source=DataSource(manifest=manifest),
        train=config,
        split=split,
        captions=CaptionConfig(per_item=1),
    )
    services = Services(settings)
    try:
        with one_thread():
            summary = finetune(services, request)
    finally:
        services.close()
    return TrainedModel(summary.folder, summary)
