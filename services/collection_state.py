"""What vitrine remembers about each collection between runs.

Kept as one JSON file per collection in the data folder: where it was ingested
from, with which column mapping (so a re-ingest needs no flags), and the
history of its ingest runs with their error reports.
"""

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from services.atomic import write_text_atomic
from services.errors import ConfigError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def check_name(name: str) -> str:
    """Collection names become Qdrant names and file names: keep them plain."""
    if not NAME_PATTERN.match(name) or "__" in name:
        raise ConfigError(
            f"{name!r} cannot name a collection: use letters, digits, '-' and '_' "
            "(no '__'), starting with a letter or digit, at most 63 characters."
        )
    return name


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunCounts(BaseModel):
    """What one ingest run counted: the run's own summary and its history entry share it."""

    seen: int = 0
    embedded: int = 0
    unchanged: int = 0
    updated: int = 0
    failed: int = 0
    missing: int = 0
    pruned: int = 0
    date_unparsed: int = 0
    seconds: float = 0.0
    report: str | None = None


class IngestRun(RunCounts):
    """One ingest run as the collection's history keeps it."""

    started_at: str
    seconds: float
    model_version: str
    trigger: str = "manual"


class AliasSwitch(BaseModel):
    """The alias moved from one physical collection to another (re-embed, rollback)."""

    at: str
    from_physical: str | None
    to_physical: str
    reason: str
    job: str | None = None


class CollectionState(BaseModel):
    name: str
    source: str | None = None
    mapping: dict[str, Any] = Field(default_factory=dict)
    model_version: str | None = None
    history: list[IngestRun] = Field(default_factory=list)
    switches: list[AliasSwitch] = Field(default_factory=list)

    @property
    def last_run(self) -> IngestRun | None:
        return self.history[-1] if self.history else None


class CollectionStates:
    """Load and save CollectionState files under `<data>/collections/<name>/`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str) -> Path:
        return self.root / check_name(name)

    def load(self, name: str) -> CollectionState | None:
        path = self.folder(name) / "state.json"
        if not path.is_file():
            return None
        return CollectionState.model_validate_json(path.read_text(encoding="utf-8"))

    def names(self) -> list[str]:
        """Every collection with a state file."""
        if not self.root.is_dir():
            return []
        return sorted(path.parent.name for path in self.root.glob("*/state.json"))

    def save(self, state: CollectionState) -> None:
        write_text_atomic(self.folder(state.name) / "state.json", state.model_dump_json(indent=2))

    def report_path(self, name: str, started_at: str) -> Path:
        stamp = started_at.replace(":", "").replace("-", "").replace("+0000", "Z")
        return self.folder(name) / "reports" / f"ingest-{stamp}.jsonl"
