"""What the Collections and Jobs pages show: collections, their states and past runs."""

from dataclasses import dataclass
from pathlib import Path

from services.collection_state import CollectionState, IngestRun
from services.errors import VitrineError
from services.store import CollectionInfo
from services.wiring import Services


@dataclass(frozen=True)
class CollectionRow:
    name: str
    info: CollectionInfo | None
    state: CollectionState | None

    @property
    def last_run(self) -> IngestRun | None:
        return self.state.last_run if self.state else None

    @property
    def report(self) -> Path | None:
        """The latest run's error report, when it wrote one and the file is still there."""
        last = self.last_run
        if last is None or not last.report:
            return None
        path = Path(last.report)
        return path if path.is_file() else None


def collection_names(services: Services) -> list[str]:
    """Every collection with an alias in the store or a remembered state, sorted."""
    names = set(services.store.aliases())
    root = services.states.root
    if root.is_dir():
        names.update(path.parent.name for path in root.glob("*/state.json"))
    return sorted(names)


def collection_rows(services: Services) -> list[CollectionRow]:
    aliases = services.store.aliases()
    rows = []
    for name in collection_names(services):
        info = services.store.info(name) if name in aliases else None
        try:
            state = services.states.load(name)
        except VitrineError:
            state = None
        rows.append(CollectionRow(name, info, state))
    return rows


def ingest_runs(services: Services) -> list[tuple[str, IngestRun]]:
    """(collection, run) for every recorded ingest run, newest first."""
    runs = [
        (row.name, run)
        for row in collection_rows(services)
        if row.state is not None
        for run in row.state.history
    ]
    return sorted(runs, key=lambda pair: pair[1].started_at, reverse=True)
