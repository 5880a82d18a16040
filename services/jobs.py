"""Durable background jobs: a huey queue on SQLite plus our own job table.

`<data>/jobs/queue.db` is huey's SqliteHuey storage (what is waiting to run,
and retries waiting for their back-off); `<data>/jobs/jobs.db` is the job table
(status, progress, log) that `vitrine jobs` reads. Both live in the data
folder, so a restarted worker picks up where the last one stopped: a job left
`running` by a worker that died is queued again and resumes (handlers are
idempotent: they skip what is already done).

Handlers are plain functions `handler(job, context) -> result dict`, given per
kind by whoever runs the worker (ingest registers its own), so this module
imports nothing above `services`.

Example:
    >>> jobs = Jobs(settings.data_dir)                      # doctest: +SKIP
    >>> job = jobs.submit("reembed", "prints", {"model": "v2"})
    >>> Jobs(settings.data_dir, handlers).work(until_idle=True)
"""

import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from huey import SqliteHuey
from huey.api import Task

from services.errors import StoreUnavailableError, VitrineError
from services.job_table import Job, JobTable

RETRIES = 3


class JobCancelled(VitrineError):
    """A running job saw that it was cancelled and stopped."""


@dataclass(frozen=True)
class JobContext:
    """What a handler may do while it runs: report progress, log, check for cancel."""

    job: Job
    table: JobTable

    def progress(self, done: int, total: int | None) -> None:
        self.table.progress(self.job.id, done, total)
        self.check_cancel()

    def log(self, message: str) -> None:
        self.table.log(self.job.id, message)

    def check_cancel(self) -> None:
        if self.table.get(self.job.id).cancel_requested:
            raise JobCancelled(f"job {self.job.id} was cancelled")


Handler = Callable[[Job, JobContext], dict[str, Any] | None]


class JobQueue(Protocol):
    """Where job ids wait for a worker."""

    def push(self, job_id: str) -> None: ...

    def run_next(self) -> bool:
        """Run one waiting job; False when none is ready."""
        ...

    def waiting(self) -> set[str]:
        """Ids of jobs queued or waiting for a retry."""
        ...


class HueyQueue:
    """SqliteHuey with one task, `run_job(job_id)`, retried with back-off."""

    def __init__(
        self, path: Path, run: Callable[[str, bool], None], retry_delay: float = 10.0
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.huey = SqliteHuey("vitrine", filename=str(path), results=False, utc=True)
        self._run = run

        @self.huey.task(
            retries=RETRIES, retry_delay=retry_delay, retry_backoff=2, context=True, name="run_job"
        )
        def run_job(job_id: str, task: Task) -> None:
            self._run(job_id, task.retries == 0)

        self._task = run_job

    def push(self, job_id: str) -> None:
        self._task(job_id)

    def run_next(self) -> bool:
        for task in self.huey.read_schedule():  # retries whose back-off has passed
            self.huey.enqueue(task)
        task = self.huey.dequeue()
        if task is None:
            return False
        self.huey.execute(task)
        return True

    def waiting(self) -> set[str]:
        tasks = [*self.huey.pending(), *self.huey.scheduled()]
        return {str(task.args[0]) for task in tasks if task.args}


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_gone(worker: str | None) -> bool:
    """True when `worker` ran on this host and its process is no longer there."""
    if not worker:
        return True
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Jobs:
    """Submit jobs, and (in a worker) run them with the handlers given."""

    def __init__(
        self,
        data_dir: Path,
        handlers: Mapping[str, Handler] | None = None,
        *,
        retry_delay: float = 10.0,
    ) -> None:
        self.table = JobTable(data_dir / "jobs" / "jobs.db")
        self.queue: JobQueue = HueyQueue(data_dir / "jobs" / "queue.db", self._run, retry_delay)
        self.handlers = dict(handlers or {})
        self._interrupted = False

    def submit(self, kind: str, collection: str | None, params: dict[str, Any]) -> Job:
        """Record a job and queue it; a worker runs it."""
        job = self.table.create(kind, collection, params)
        self.queue.push(job.id)
        return job

    def recover(self) -> list[str]:
        """Queue again jobs whose worker died, and queued jobs the queue lost."""
        waiting = self.queue.waiting()
        recovered = []
        for job in [*self.table.recent("running", 1000), *self.table.recent("queued", 1000)]:
            if job.status == "running" and not _worker_gone(job.worker):
                continue
            if job.status == "queued" and job.id in waiting:
                continue
            if job.status == "running":
                self.table.log(job.id, f"the worker {job.worker} stopped; resuming")
            self.table.requeue(job.id)
            self.queue.push(job.id)
            recovered.append(job.id)
        return recovered

    def work(
        self,
        *,
        until_idle: bool = False,
        poll: float = 1.0,
        stop: threading.Event | None = None,
        tick: Callable[[], object] | None = None,
    ) -> int:
        """Run jobs until `stop` is set (or, with `until_idle`, until none wait).

        `tick` is called before each job (the worker checks its schedule there).
        Returns the number of jobs run.
        """
        stop = stop or threading.Event()
        self.recover()
        ran = 0
        while not stop.is_set():
            if tick is not None:
                tick()
            if self.queue.run_next():
                ran += 1
                if self._interrupted:  # huey swallows Ctrl-C inside a task; pass it on
                    self._interrupted = False
                    raise KeyboardInterrupt
                continue
            if until_idle and not self.queue.waiting():
                break
            stop.wait(poll)
        return ran

    def _run(self, job_id: str, final: bool) -> None:
        job = self.table.get(job_id)
        if job.finished:
            return
        if job.cancel_requested:
            self.table.finish(job_id, "cancelled", error="cancelled")
            return
        handler = self.handlers.get(job.kind)
        if handler is None:
            self.table.finish(job_id, "failed", error=f"this worker cannot run {job.kind!r} jobs")
            return
        job = self.table.start(job_id, _worker_name())
        self.table.log(job_id, f"started (attempt {job.attempts}) by {job.worker}")
        context = JobContext(job, self.table)
        try:
            result = handler(job, context)
        except KeyboardInterrupt:
            self.table.log(job_id, "interrupted; it resumes when a worker starts again")
            self.table.requeue(job_id)
            self.queue.push(job_id)
            self._interrupted = True
            raise
        except JobCancelled:
            self.table.log(job_id, "cancelled")
            self.table.finish(job_id, "cancelled", error="cancelled")
        except VitrineError as error:
            if isinstance(error, StoreUnavailableError) and not final:
                self.table.log(job_id, f"store unavailable ({error}); retrying with back-off")
                self.table.requeue(job_id)
                raise
            self.table.log(job_id, f"failed: {error}")
            self.table.finish(job_id, "failed", error=str(error))
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            if final:
                self.table.log(job_id, f"failed after {job.attempts} attempts: {reason}")
                self.table.finish(job_id, "failed", error=reason)
            else:
                self.table.log(job_id, f"transient fault ({reason}); retrying with back-off")
                self.table.requeue(job_id)
            raise
        else:
            self.table.log(job_id, "done")
            self.table.finish(job_id, "done", result=result)
