"""The job table: what each background job is, where it stands, and what it said.

One SQLite file in the data folder (`<data>/jobs/jobs.db`), so status, progress
and logs survive a restart and can be read by `vitrine jobs` while a worker
runs. Every change is one short transaction; readers never see half a write.
"""

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from services.collection_state import utc_now
from services.errors import VitrineError

Status = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[str, ...] = ("done", "failed", "cancelled")

_SCHEMA = (
    """create table if not exists jobs (
        id text primary key, kind text not null, collection text, params text not null,
        status text not null, done integer not null default 0, total integer,
        error text, result text, attempts integer not null default 0, worker text,
        cancel_requested integer not null default 0,
        created_at text not null, started_at text, finished_at text)""",
    "create index if not exists jobs_status on jobs (status)",
    """create table if not exists job_log (
        id integer primary key autoincrement, job_id text not null,
        at text not null, message text not null)""",
    "create index if not exists job_log_job on job_log (job_id)",
)


class JobNotFoundError(VitrineError):
    """No job has the id the user gave."""


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    kind: str
    collection: str | None
    params: dict[str, Any]
    status: Status
    done: int
    total: int | None
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    worker: str | None
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    values["result"] = json.loads(values["result"]) if values["result"] else None
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Job(**values)


class JobTable:
    """Create, update and read jobs and their log lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        setup = sqlite3.connect(self.path, timeout=30)
        try:
            setup.execute("pragma journal_mode=wal")  # readers never wait for the worker
        finally:
            setup.close()
        with self._connect() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("begin immediate")
            yield db
            db.execute("commit")
        except BaseException:
            if db.in_transaction:
                db.execute("rollback")
            raise
        finally:
            db.close()

    def create(self, kind: str, collection: str | None, params: dict[str, Any]) -> Job:
        job_id = uuid.uuid4().hex[:12]
        with self._connect() as db:
            db.execute(
                "insert into jobs (id, kind, collection, params, status, created_at) "
                "values (?, ?, ?, ?, 'queued', ?)",
                (job_id, kind, collection, json.dumps(params), utc_now()),
            )
        self.log(job_id, f"queued: {kind} {collection or ''}".rstrip())
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self._connect() as db:
            row = db.execute("select * from jobs where id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"No job {job_id!r}: `vitrine jobs list` shows the known ones.")
        return _job(row)

    def recent(self, status: str | None = None, limit: int = 50) -> list[Job]:
        query = "select * from jobs" + (" where status = ?" if status else "")
        query += " order by created_at desc, rowid desc limit ?"
        arguments: tuple[Any, ...] = (status, limit) if status else (limit,)
        with self._connect() as db:
            return [_job(row) for row in db.execute(query, arguments)]

    def active(self, kind: str, collection: str) -> list[Job]:
        """Queued or running jobs of `kind` on `collection`."""
        with self._connect() as db:
            rows = db.execute(
                "select * from jobs where kind = ? and collection = ? "
                "and status in ('queued', 'running')",
                (kind, collection),
            )
            return [_job(row) for row in rows]

    def start(self, job_id: str, worker: str) -> Job:
        with self._connect() as db:
            db.execute(
                "update jobs set status = 'running', worker = ?, attempts = attempts + 1, "
                "started_at = coalesce(started_at, ?) where id = ?",
                (worker, utc_now(), job_id),
            )
        return self.get(job_id)

    def progress(self, job_id: str, done: int, total: int | None) -> None:
        with self._connect() as db:
            db.execute("update jobs set done = ?, total = ? where id = ?", (done, total, job_id))

    def finish(
        self,
        job_id: str,
        status: Status,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        with self._connect() as db:
            db.execute(
                "update jobs set status = ?, error = ?, result = ?, finished_at = ? where id = ?",
                (status, error, json.dumps(result) if result else None, utc_now(), job_id),
            )

    def requeue(self, job_id: str) -> None:
        """Back to `queued` (a retry, or a resume after the worker stopped)."""
        with self._connect() as db:
            db.execute("update jobs set status = 'queued', worker = null where id = ?", (job_id,))

    def request_cancel(self, job_id: str) -> Job:
        """Cancel a queued job now; ask a running one to stop at its next step."""
        job = self.get(job_id)
        if job.finished:
            return job
        with self._connect() as db:
            db.execute("update jobs set cancel_requested = 1 where id = ?", (job_id,))
        if job.status == "queued":
            self.finish(job_id, "cancelled", error="cancelled before it started")
        self.log(job_id, "cancel requested")
        return self.get(job_id)

    def log(self, job_id: str, message: str) -> None:
        with self._connect() as db:
            db.execute(
                "insert into job_log (job_id, at, message) values (?, ?, ?)",
                (job_id, utc_now(), message),
            )

    def logs(self, job_id: str) -> list[tuple[str, str]]:
        """(time, message) lines of a job, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "select at, message from job_log where job_id = ? order by id", (job_id,)
            )
            return [(str(row["at"]), str(row["message"])) for row in rows]
