"""Model folders in Hugging Face hub layout, loadable with `local-dir:`.

`open_clip_config.json` + `open_clip_model.safetensors` (+ `model_card.json`),
written into a temporary folder and renamed into place, so a crash never
leaves a folder that looks complete.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def save_model_folder(
    model: torch.nn.Module,
    model_cfg: dict[str, Any],
    folder: Path,
    *,
    preprocess_cfg: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
) -> Path:
    """Write `model` to `folder` atomically; an existing folder is replaced."""
    folder = folder.expanduser().resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        config = {
            "model_cfg": model_cfg,
            "preprocess_cfg": preprocess_cfg
            or {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)},
        }
        (staging / "open_clip_config.json").write_text(json.dumps(config, indent=2))
        state = {key: value.contiguous() for key, value in model.state_dict().items()}
        save_file(state, str(staging / "open_clip_model.safetensors"))
        if card is not None:
            (staging / "model_card.json").write_text(json.dumps(card, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
