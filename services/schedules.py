"""Scheduled re-ingestion: which collections to re-ingest, and how often.

Stored in the job database (`<data>/jobs/jobs.db`, table `schedules`), so the
schedule survives restarts and any worker can read it. An entry is either an
interval (`6h`, `30m`, `2d`, `90s`) or a five-field cron expression
(`0 3 * * *`, checked with huey's `crontab`). The worker asks `due()` on each
turn and queues an ingest job for every entry that is due.
"""

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huey import crontab

from services.collection_state import check_name
from services.errors import ConfigError
from services.jobs import Jobs

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SCHEMA = """create table if not exists schedules (
    collection text primary key, every_seconds real, cron text,
    next_run real, last_run real, last_job text, created_at real not null)"""


@dataclass(frozen=True)
class Schedule:
    collection: str
    every_seconds: float | None
    cron: str | None
    next_run: float | None
    last_run: float | None
    last_job: str | None
    created_at: float

    @property
    def every(self) -> str:
        """How a person wrote it: `6h` or the cron expression."""
        if self.cron:
            return self.cron
        seconds = self.every_seconds or 0
        for unit in ("d", "h", "m"):
            if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
                return f"{int(seconds // _UNITS[unit])}{unit}"
        return f"{seconds:g}s"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"every": self.every}


def parse_every(text: str) -> tuple[float | None, str | None]:
    """`6h` -> (21600, None); `0 3 * * *` -> (None, "0 3 * * *").

    Raises:
        ConfigError: neither an interval nor a five-field cron expression.
    """
    interval = _INTERVAL.match(text)
    if interval:
        seconds = float(interval.group(1)) * _UNITS[interval.group(2)]
        if seconds <= 0:
            raise ConfigError(f"The interval {text!r} must be longer than zero.")
        return seconds, None
    _cron_test(text)
    return None, " ".join(text.split())


def _cron_test(expression: str) -> Callable[[datetime], bool]:
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(
            f"{expression!r} is neither an interval (30m, 6h, 1d) nor a cron expression "
            "with five fields (minute hour day month weekday), such as '0 3 * * *'."
        )
    try:
        test: Callable[[datetime], bool] = crontab(*fields)
    except ValueError as error:
        raise ConfigError(f"Invalid cron expression {expression!r}: {error}") from error
    return test


class Schedules:
    """Add, list, remove schedule entries, and say which are due."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(self, collection: str, every: str, now: float | None = None) -> Schedule:
        """Re-ingest `collection` every `every`; replaces an earlier entry."""
        check_name(collection)
        seconds, cron = parse_every(every)
        now = time.time() if now is None else now
        next_run = now + seconds if seconds else None
        with self._connect() as db:
            db.execute(
                "insert or replace into schedules "
                "(collection, every_seconds, cron, next_run, created_at) values (?, ?, ?, ?, ?)",
                (collection, seconds, cron, next_run, now),
            )
        return self.get(collection)

    def get(self, collection: str) -> Schedule:
        with self._connect() as db:
            row = db.execute(
                "select * from schedules where collection = ?", (collection,)
            ).fetchone()
        if row is None:
            raise ConfigError(f"{collection!r} has no schedule: `vitrine schedule list`.")
        return Schedule(**dict(row))

    def entries(self) -> list[Schedule]:
        with self._connect() as db:
            rows = db.execute("select * from schedules order by collection")
            return [Schedule(**dict(row)) for row in rows]

    def remove(self, collection: str) -> None:
        self.get(collection)
        with self._connect() as db:
            db.execute("delete from schedules where collection = ?", (collection,))

    def due(self, now: float | None = None) -> list[Schedule]:
        """Entries whose time has come and that have not fired for it yet."""
        now = time.time() if now is None else now
        minute = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0, tzinfo=None)
        due = []
        for entry in self.entries():
            if entry.cron:
                fired_this_minute = entry.last_run is not None and entry.last_run >= (
                    minute.replace(tzinfo=UTC).timestamp()
                )
                if _cron_test(entry.cron)(minute) and not fired_this_minute:
                    due.append(entry)
            elif entry.next_run is not None and entry.next_run <= now:
                due.append(entry)
        return due

    def fired(self, collection: str, job_id: str, now: float | None = None) -> None:
        """Remember that `collection` was queued now; set its next time."""
        now = time.time() if now is None else now
        entry = self.get(collection)
        next_run = now + entry.every_seconds if entry.every_seconds else None
        with self._connect() as db:
            db.execute(
                "update schedules set last_run = ?, last_job = ?, next_run = ? "
                "where collection = ?",
                (now, job_id, next_run, collection),
            )


def queue_due(schedules: Schedules, jobs: Jobs, now: float | None = None) -> list[str]:
    """Queue an ingest job (with prune) for every due entry; returns the job ids.

    An entry whose collection already has an ingest queued or running is
    skipped this turn, so a slow ingest never piles up behind itself.
    """
    queued = []
    for entry in schedules.due(now):
        if jobs.table.active("ingest", entry.collection):
            continue
        job = jobs.submit("ingest", entry.collection, {"prune": True, "trigger": "schedule"})
        schedules.fired(entry.collection, job.id, now)
        queued.append(job.id)
    return queued
