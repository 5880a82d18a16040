"""The model registry: `<data>/models/<version>` folders, the promoted default, exports.

A version folder appears only whole: it is assembled elsewhere and renamed
into the registry in one step. The promoted version is named in
`<data>/models/default.json`, which services read to pick the model for new
ingests.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.atomic import write_text_atomic
from services.collection_state import utc_now
from services.errors import ConfigError, ModelUnavailableError
from services.models import slug
from services.store import VERSION_SEPARATOR

DEFAULT_POINTER = "default.json"
CARD = "model_card.json"


def check_version(version: str) -> str:
    """A version names a folder and a Qdrant collection suffix: lower-case letters, digits, '-'."""
    if not version or slug(version) != version or VERSION_SEPARATOR in version:
        raise ConfigError(
            f"{version!r} cannot name a model version: use lower-case letters, digits and "
            f"single dashes, e.g. {slug(version) or 'prints-ft-1'!r}"
        )
    return version


@dataclass(frozen=True)
class VersionEntry:
    version: str
    folder: Path
    card: dict[str, Any]
    promoted: bool


class Registry:
    """Version folders under `root` (`Settings.registry_path`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, version: str) -> Path:
        """The folder of an existing version.

        Raises:
            ModelUnavailableError: no such version (the message lists the known ones).
        """
        folder = self.root / check_version(version)
        if not (folder / "open_clip_config.json").is_file():
            known = ", ".join(entry.version for entry in self.versions()) or "none yet"
            raise ModelUnavailableError(
                f"no model version {version!r} in {self.root} (known: {known}). "
                "Make one with `vitrine finetune`."
            )
        return folder

    def exists(self, version: str) -> bool:
        return (self.root / version).exists()

    def card(self, version: str) -> dict[str, Any]:
        path = self.folder(version) / CARD
        if not path.is_file():
            return {"version": version}
        card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return card

    def versions(self) -> list[VersionEntry]:
        """Every complete version folder, oldest first."""
        if not self.root.is_dir():
            return []
        promoted = self.promoted()
        entries = []
        for folder in self.root.iterdir():
            if folder.name.startswith(".") or not (folder / "open_clip_config.json").is_file():
                continue
            card_path = folder / CARD
            card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
            entries.append(VersionEntry(folder.name, folder, card, folder.name == promoted))
        return sorted(
            entries, key=lambda entry: (str(entry.card.get("created_at", "")), entry.version)
        )

    def publish(self, staged: Path, version: str) -> Path:
        """Move a complete folder into the registry under `version` in one rename.

        Raises:
            ConfigError: the version exists already (versions are never overwritten).
        """
        target = self.root / check_version(version)
        if target.exists():
            raise ConfigError(f"model version {version!r} exists already: choose another name")
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return target

    def promoted(self) -> str | None:
        """The version promoted as the default model for new ingests, if any."""
        path = self.root / DEFAULT_POINTER
        if not path.is_file():
            return None
        version = json.loads(path.read_text(encoding="utf-8")).get("version")
        return str(version) if version else None

    def promote(self, version: str) -> dict[str, Any]:
        """Make `version` the default model for new ingests; returns the pointer written."""
        self.folder(version)
        pointer = {"version": version, "promoted_at": utc_now(), "previous": self.promoted()}
        write_text_atomic(self.root / DEFAULT_POINTER, json.dumps(pointer, indent=2))
        return pointer

    def export(self, version: str, destination: Path) -> Path:
        """Copy a version folder to `destination` (which must not exist), atomically.

        The copy is loadable anywhere with `local-dir:` and can be pushed to a hub as it is.
        """
        source = self.folder(version)
        destination = destination.expanduser().resolve()
        if destination.exists():
            raise ConfigError(f"{destination} exists already: export to a new folder")
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            os.replace(staging, destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return destination
