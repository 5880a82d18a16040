"""Loading open_clip models: a name + pretrained tag, a hub id, or a local folder.

A loaded model knows its *version*: a short, collection-name-safe string that
names the physical Qdrant collection built with it (`prints__<version>`).
"""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import open_clip
import torch

from services.errors import ModelUnavailableError

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load: `name` as open_clip takes it, `pretrained` for bare names."""

    name: str
    pretrained: str | None = None

    @property
    def is_local(self) -> bool:
        return self.name.startswith(LOCAL_DIR)

    @property
    def is_hub(self) -> bool:
        return self.name.startswith(HF_HUB)

    @property
    def local_path(self) -> Path:
        return Path(self.name[len(LOCAL_DIR) :]).expanduser()

    def describe(self) -> str:
        """How a person would name this model in a message."""
        if self.is_local or self.is_hub or not self.pretrained:
            return self.name
        return f"{self.name} ({self.pretrained})"


class ClipModel(Protocol):
    """What we use of an open_clip model."""

    def encode_text(self, text: torch.Tensor) -> torch.Tensor: ...

    def encode_image(self, image: torch.Tensor) -> torch.Tensor: ...

    def eval(self) -> Any: ...


@dataclass(frozen=True)
class LoadedModel:
    """An open_clip model ready for inference, with what it needs around it."""

    spec: ModelSpec
    model: ClipModel
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    version: str
    dim: int
    image_size: int


def slug(text: str) -> str:
    """Lower-case `text` to letters, digits and single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _file_digest(path: Path, length: int = 8) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def model_version(spec: ModelSpec) -> str:
    """The version string of a model, stable for the same weights.

    A registry folder names itself in `model_card.json` (`version`); any other
    local folder is its name plus a digest of its weights, so a re-trained model
    saved to the same folder gets a new version.
    """
    if spec.is_local:
        folder = spec.local_path
        card = folder / "model_card.json"
        if card.is_file():
            version = json.loads(card.read_text(encoding="utf-8")).get("version")
            if version:
                return slug(str(version))
        weights = sorted(folder.glob("open_clip_model.safetensors")) or sorted(
            folder.glob("*.safetensors")
        ) + sorted(folder.glob("*.bin"))
        suffix = _file_digest(weights[0]) if weights else "noweights"
        return slug(f"{folder.name}-{suffix}")
    if spec.is_hub:
        return slug(spec.name[len(HF_HUB) :])
    return slug(f"{spec.name}-{spec.pretrained or 'untrained'}")


def _offline_message(spec: ModelSpec, cause: BaseException) -> str:
    return (
        f"Could not load the model {spec.describe()}: {cause}.\n"
        "If this machine is offline, its weights are not in the local cache. Either run once "
        "with internet access so they are downloaded, or point vitrine at a folder that holds "
        "them: VITRINE_MODEL=local-dir:/path/to/folder (a folder with open_clip_config.json and "
        "open_clip_model.safetensors, as `vitrine models export` writes), or pass "
        "--model local-dir:/path/to/folder."
    )


def load_model(spec: ModelSpec, device: torch.device) -> LoadedModel:
    """Load `spec` on `device` in eval mode.

    Raises:
        ModelUnavailableError: the folder is missing or incomplete, the name is
            unknown, or the weights cannot be downloaded (offline).
    """
    if spec.is_local:
        folder = spec.local_path
        if not (folder / "open_clip_config.json").is_file():
            raise ModelUnavailableError(
                f"{folder} is not a model folder: it has no open_clip_config.json. "
                "A model folder holds open_clip_config.json and open_clip_model.safetensors."
            )
    elif not spec.is_hub and spec.name not in open_clip.list_models():
        raise ModelUnavailableError(
            f"Unknown model {spec.name!r}. Use an open_clip model name (for example "
            "ViT-B-32 or xlm-roberta-base-ViT-B-32), hf-hub:ORG/NAME, or local-dir:PATH."
        )
    pretrained = None if (spec.is_local or spec.is_hub) else spec.pretrained
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.name, pretrained=pretrained, device=device
        )
        tokenizer = open_clip.get_tokenizer(spec.name)
    except (OSError, RuntimeError, ValueError) as error:
        raise ModelUnavailableError(_offline_message(spec, error)) from error
    model.eval()
    image_size = _image_size(model)
    with torch.no_grad():
        dim = int(model.encode_text(tokenizer(["probe"]).to(device)).shape[-1])
    return LoadedModel(
        spec=spec,
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        version=model_version(spec),
        dim=dim,
        image_size=image_size,
    )


def _image_size(model: torch.nn.Module) -> int:
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)
