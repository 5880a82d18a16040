"""Turning a finished run into a registry version: config, weights, card, charts, README.

The folder is assembled in the run's own `staging/` folder and renamed into
the registry in one step, so the registry never shows a half-written version.
"""

import shutil
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.model import get_model_preprocess_cfg

from finetune.cards import readme, write_plots
from finetune.checkpoint import CHECKPOINT
from finetune.registry import Registry
from finetune.train import EpochRecord
from services.errors import ConfigError
from services.model_folder import save_model_folder
from services.models import LoadedModel, ModelSpec


def model_config(spec: ModelSpec) -> dict[str, Any]:
    """The open_clip architecture of `spec`, as `open_clip_config.json` holds it."""
    config = open_clip.get_model_config(spec.name)
    if config is None:
        raise ConfigError(f"no open_clip configuration for {spec.describe()}")
    pretrained = (
        {}
        if spec.is_local or spec.is_hub
        else open_clip.get_pretrained_cfg(spec.name, spec.pretrained or "")
    )
    if pretrained.get("quick_gelu"):
        config["quick_gelu"] = True
    return dict(config)


def module_of(loaded: LoadedModel) -> torch.nn.Module:
    """The loaded open_clip model as the torch module it is (to train, save, reload)."""
    model = loaded.model
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{loaded.spec.describe()} is not a torch model and cannot be trained")
    return model


def publish_version(
    registry: Registry,
    folder: Path,
    loaded: LoadedModel,
    base: ModelSpec,
    card: dict[str, Any],
    history: list[EpochRecord],
    outcome: dict[str, Any],
) -> Path:
    """Assemble the version folder outside the registry, then rename it in."""
    staging_root = folder / "staging"
    shutil.rmtree(staging_root, ignore_errors=True)
    card["plots"] = ["loss.png", "validation.png", "wise.png"]
    staged = save_model_folder(
        module_of(loaded),
        model_config(base),
        staging_root / card["version"],
        preprocess_cfg=get_model_preprocess_cfg(module_of(loaded)),
        card=card,
    )
    write_plots(
        staged,
        history,
        outcome["base_score"],
        outcome["scores"],
        card["hyperparameters"]["recall_k"],
    )
    (staged / "README.md").write_text(readme(card), encoding="utf-8")
    published = registry.publish(staged, card["version"])
    shutil.rmtree(staging_root, ignore_errors=True)
    return published


def tidy_run_folder(folder: Path) -> None:
    """After publishing: drop the checkpoint and best-epoch files, keep weights and report."""
    (folder / CHECKPOINT).unlink(missing_ok=True)
    for stale in folder.glob("best-epoch*.safetensors"):
        stale.unlink()
