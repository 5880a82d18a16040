"""A tiny open_clip model (random weights) saved as a `local-dir:` folder.

The same loading path a fine-tuned model version takes; weights cannot be
downloaded on the test machines.
"""

from pathlib import Path

import torch
from open_clip.model import CLIP

from services.model_folder import save_model_folder

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_model_folder(CLIP(**TINY_CFG), TINY_CFG, folder)
