"""Which model spec each model version came from, so a collection is always
queried with the model it was built with."""

import json
from pathlib import Path

from services.atomic import write_text_atomic
from services.errors import ModelUnavailableError
from services.models import LOCAL_DIR, ModelSpec


class ModelCatalog:
    """A small JSON book in the data folder: version -> {name, pretrained}.

    Registry folders (`<data>/models/<version>`) need no entry: they are found
    by their folder name.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "model_versions.json"
        self.registry = data_dir / "models"

    def _entries(self) -> dict[str, dict[str, str | None]]:
        if not self.path.is_file():
            return {}
        return dict(json.loads(self.path.read_text(encoding="utf-8")))

    def remember(self, version: str, spec: ModelSpec) -> None:
        entries = self._entries()
        entry = {"name": spec.name, "pretrained": spec.pretrained}
        if entries.get(version) != entry:
            entries[version] = entry
            write_text_atomic(self.path, json.dumps(entries, indent=2, sort_keys=True))

    def spec_for(self, version: str) -> ModelSpec:
        folder = self.registry / version
        if (folder / "open_clip_config.json").is_file():
            return ModelSpec(f"{LOCAL_DIR}{folder}")
        entry = self._entries().get(version)
        if entry is None:
            raise ModelUnavailableError(
                f"No model is known for version {version!r} in {self.path.parent}. Point "
                "VITRINE_DATA_DIR at the folder the collection was built from, or pass the "
                "model it was built with (--model)."
            )
        return ModelSpec(str(entry["name"]), entry.get("pretrained"))
