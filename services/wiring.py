"""Build the shared objects from one Settings, once, for any entry point.

The CLI, the worker and the UI each call `Services(settings)`; nothing else
reads the environment. Expensive parts (the store, models) are opened on first
use and kept.
"""

import json
from functools import cached_property
from pathlib import Path

import torch

from services.collection_state import CollectionStates
from services.embedder import Embedder, pick_device
from services.jobs import Jobs
from services.model_catalog import ModelCatalog
from services.models import LOCAL_DIR, ModelSpec
from services.schedules import Schedules
from services.search import Searcher
from services.settings import Settings
from services.store import Store


def promoted_folder(registry: Path) -> Path | None:
    """The registry folder `vitrine models promote` named, if it is still there."""
    try:
        version = json.loads((registry / "default.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    folder = registry / str(version or "")
    return folder if version and (folder / "open_clip_config.json").is_file() else None


class Services:
    """The store, model loader, collection states and searcher of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedders: dict[str, Embedder] = {}

    @cached_property
    def store(self) -> Store:
        return Store.open(self.settings)

    @cached_property
    def device(self) -> torch.device:
        return pick_device(self.settings.device)

    @cached_property
    def catalog(self) -> ModelCatalog:
        return ModelCatalog(self.settings.data_dir)

    @cached_property
    def states(self) -> CollectionStates:
        return CollectionStates(self.settings.collections_path)

    @cached_property
    def jobs(self) -> Jobs:
        """The job table and queue (submitting only; a worker adds handlers)."""
        return Jobs(self.settings.data_dir)

    @cached_property
    def schedules(self) -> Schedules:
        return Schedules(self.settings.data_dir / "jobs" / "jobs.db")

    @property
    def model_spec(self) -> ModelSpec:
        """The model for ingest and new collections: VITRINE_MODEL / --model when
        given, else the version `vitrine models promote` named, else the default."""
        if "model" not in self.settings.model_fields_set:
            promoted = promoted_folder(self.settings.registry_path)
            if promoted is not None:
                return ModelSpec(f"{LOCAL_DIR}{promoted}")
        return ModelSpec(self.settings.model, self.settings.pretrained)

    def embedder(self, spec: ModelSpec | None = None) -> Embedder:
        """A loaded model, once per spec per process."""
        spec = spec or self.model_spec
        key = f"{spec.name}|{spec.pretrained}"
        if key not in self._embedders:
            embedder = Embedder.from_spec(spec, self.device, self.settings.batch_size)
            self.catalog.remember(embedder.version, spec)
            self._embedders[key] = embedder
        return self._embedders[key]

    def embedder_for_version(self, version: str) -> Embedder:
        """The model a physical collection was built with."""
        return self.embedder(self.catalog.spec_for(version))

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(self.store, self.embedder_for_version)

    def release_store(self) -> None:
        """Close the embedded store so other processes can open it; reopened on next use.

        A server connection is kept: any number of processes share a server.
        """
        if self.settings.qdrant_url is None and "store" in self.__dict__:
            self.__dict__.pop("searcher", None)
            self.__dict__.pop("store").close()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
