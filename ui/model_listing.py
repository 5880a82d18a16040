"""The model versions this data folder knows, with their model cards.

Two sources: `model_versions.json` (base models a collection was built with,
by name and pretrained tag) and registry folders `<data>/models/<version>/`
(fine-tuned versions, each with `model_card.json`, metrics included).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.models import LOCAL_DIR, ModelSpec, model_version
from services.store import version_of
from services.wiring import Services


@dataclass(frozen=True)
class ModelVersion:
    version: str
    source: str
    card: dict[str, Any] = field(default_factory=dict)
    collections: tuple[str, ...] = ()
    configured: bool = False

    @property
    def metrics(self) -> dict[str, Any]:
        value = self.card.get("metrics") or self.card.get("evaluation") or {}
        return dict(value) if isinstance(value, dict) else {}

    @property
    def curves(self) -> dict[str, list[float]]:
        """Series of numbers in the card (training loss, validation recall per step...)."""
        value = self.card.get("curves") or self.card.get("history") or {}
        if not isinstance(value, dict):
            return {}
        return {
            str(name): [float(point) for point in points]
            for name, points in value.items()
            if isinstance(points, list) and all(isinstance(p, (int, float)) for p in points)
        }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def model_versions(services: Services) -> list[ModelVersion]:
    """Every known version: registry folders, catalogued base models and the configured one."""
    used: dict[str, list[str]] = {}
    for alias, physical in sorted(services.store.aliases().items()):
        used.setdefault(version_of(physical), []).append(alias)
    configured = services.model_spec
    try:
        configured_version = model_version(configured)
    except OSError:
        configured_version = ""
    found: dict[str, ModelVersion] = {}
    registry = services.catalog.registry
    if registry.is_dir():
        for folder in sorted(registry.iterdir()):
            if (folder / "open_clip_config.json").is_file():
                found[folder.name] = ModelVersion(
                    folder.name, f"{LOCAL_DIR}{folder}", _read_json(folder / "model_card.json")
                )
    for version, entry in sorted(_read_json(services.catalog.path).items()):
        if version not in found and isinstance(entry, dict):
            spec = ModelSpec(str(entry.get("name")), entry.get("pretrained"))
            found[version] = ModelVersion(version, spec.describe())
    if configured_version and configured_version not in found:
        found[configured_version] = ModelVersion(configured_version, configured.describe())
    return [
        ModelVersion(
            model.version,
            model.source,
            model.card,
            tuple(used.get(model.version, ())),
            model.version == configured_version,
        )
        for model in found.values()
    ]
