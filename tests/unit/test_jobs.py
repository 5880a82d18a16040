"""The job table and queue: status, progress, log, retries, cancel, resume; schedules."""

import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.errors import ConfigError, StoreUnavailableError, VitrineError
from services.job_table import Job
from services.jobs import HueyQueue, JobContext, Jobs
from services.schedules import Schedules, parse_every, queue_due


def _jobs(tmp_path: Path, **handlers: Any) -> Jobs:
    return Jobs(tmp_path, handlers, retry_delay=0.01)


def test_a_job_runs_with_progress_log_and_result(tmp_path: Path) -> None:
    def count(job: Job, context: JobContext) -> dict[str, Any]:
        context.progress(1, 2)
        context.log("half way")
        context.progress(2, 2)
        return {"counted": job.params["n"]}

    jobs = _jobs(tmp_path, count=count)
    job = jobs.submit("count", "prints", {"n": 2})
    assert jobs.table.get(job.id).status == "queued"
    assert jobs.work(until_idle=True, poll=0.01) == 1
    done = jobs.table.get(job.id)
    assert (done.status, done.done, done.total, done.result) == ("done", 2, 2, {"counted": 2})
    assert "half way" in [text for _, text in jobs.table.logs(job.id)]
    # a new process sees the same table
    assert Jobs(tmp_path).table.get(job.id).status == "done"


def test_a_permanent_error_fails_at_once_with_its_reason(tmp_path: Path) -> None:
    def broken(job: Job, context: JobContext) -> None:
        raise VitrineError("the source is gone: ingest it again")

    jobs = _jobs(tmp_path, broken=broken)
    job = jobs.submit("broken", None, {})
    jobs.work(until_idle=True, poll=0.01)
    failed = jobs.table.get(job.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error == "the source is gone: ingest it again"


def test_a_transient_fault_is_retried_with_back_off(tmp_path: Path) -> None:
    calls: list[float] = []

    def flaky(job: Job, context: JobContext) -> dict[str, Any]:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("Qdrant went away")
        return {"ok": True}

    jobs = Jobs(tmp_path, {"flaky": flaky}, retry_delay=0.2)
    job = jobs.submit("flaky", None, {})
    jobs.work(until_idle=True, poll=0.01)
    done = jobs.table.get(job.id)
    assert (done.status, done.attempts) == ("done", 3)
    assert calls[1] - calls[0] >= 0.2 and calls[2] - calls[1] >= 0.4  # the wait doubles
    assert sum("transient fault" in text for _, text in jobs.table.logs(job.id)) == 2


def test_a_busy_store_is_retried_not_failed(tmp_path: Path) -> None:
    calls: list[int] = []

    def busy_once(job: Job, context: JobContext) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise StoreUnavailableError("The embedded store is open in another vitrine process")
        return {"ok": True}

    jobs = _jobs(tmp_path, busy=busy_once)
    job = jobs.submit("busy", None, {})
    jobs.work(until_idle=True, poll=0.005)
    assert (jobs.table.get(job.id).status, len(calls)) == ("done", 2)


def test_a_fault_that_never_clears_fails_after_the_retries(tmp_path: Path) -> None:
    def down(job: Job, context: JobContext) -> None:
        raise TimeoutError("no answer")

    jobs = _jobs(tmp_path, down=down)
    job = jobs.submit("down", None, {})
    jobs.work(until_idle=True, poll=0.005)
    failed = jobs.table.get(job.id)
    assert (failed.status, failed.attempts) == ("failed", 4)
    assert failed.error == "TimeoutError: no answer"


def test_cancel_a_queued_job_and_a_running_one(tmp_path: Path) -> None:
    ran: list[str] = []

    def slow(job: Job, context: JobContext) -> None:
        ran.append(job.id)
        context.table.request_cancel(job.id)  # as `vitrine jobs cancel` would, meanwhile
        context.progress(1, 10)
        ran.append("not reached")

    jobs = _jobs(tmp_path, slow=slow)
    queued = jobs.submit("slow", None, {})
    assert jobs.table.request_cancel(queued.id).status == "cancelled"
    running = jobs.submit("slow", None, {})
    jobs.work(until_idle=True, poll=0.01)
    assert ran == [running.id]
    assert jobs.table.get(running.id).status == "cancelled"
    assert jobs.table.get(queued.id).status == "cancelled"


def test_a_job_left_running_by_a_dead_worker_resumes(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, work=lambda job, context: {"resumed": True})
    job = jobs.submit("work", None, {})
    assert isinstance(jobs.queue, HueyQueue)
    assert jobs.queue.huey.dequeue() is not None  # a worker took it ...
    jobs.table.start(job.id, f"{socket.gethostname()}:999999999")  # that worker died
    jobs.work(until_idle=True, poll=0.01)
    done = jobs.table.get(job.id)
    assert (done.status, done.result, done.attempts) == ("done", {"resumed": True}, 2)
    assert any("resuming" in text for _, text in jobs.table.logs(job.id))


def test_ctrl_c_stops_the_worker_and_the_job_resumes(tmp_path: Path) -> None:
    calls: list[int] = []

    def interrupted_once(job: Job, context: JobContext) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return {"ok": True}

    jobs = _jobs(tmp_path, work=interrupted_once)
    job = jobs.submit("work", None, {})
    with pytest.raises(KeyboardInterrupt):
        jobs.work(until_idle=True, poll=0.01)
    assert jobs.table.get(job.id).status == "queued"
    Jobs(tmp_path, {"work": interrupted_once}).work(until_idle=True, poll=0.01)
    assert jobs.table.get(job.id).status == "done"


def test_parse_every() -> None:
    assert parse_every("6h") == (21600, None)
    assert parse_every("30m") == (1800, None)
    assert parse_every("0  3 * * *") == (None, "0 3 * * *")
    with pytest.raises(ConfigError, match="cron"):
        parse_every("every tuesday")


def test_interval_schedule_is_due_once_per_interval(tmp_path: Path) -> None:
    schedules = Schedules(tmp_path / "jobs.db")
    schedules.add("prints", "1h", now=1000.0)
    assert schedules.due(now=1000.0 + 3599) == []
    assert [entry.collection for entry in schedules.due(now=1000.0 + 3600)] == ["prints"]
    schedules.fired("prints", "job1", now=4600.0)
    assert schedules.due(now=4700.0) == []
    assert schedules.get("prints").next_run == 4600.0 + 3600
    assert schedules.get("prints").every == "1h"


def test_cron_schedule_fires_once_in_its_minute(tmp_path: Path) -> None:
    schedules = Schedules(tmp_path / "jobs.db")
    schedules.add("maps", "30 3 * * *")
    at = datetime(2026, 1, 5, 3, 30, 10, tzinfo=UTC).timestamp()
    assert schedules.due(now=at - 60) == []
    assert len(schedules.due(now=at)) == 1
    schedules.fired("maps", "job1", now=at)
    assert schedules.due(now=at + 20) == []


def test_queue_due_makes_one_ingest_job_per_due_collection(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    schedules = Schedules(tmp_path / "jobs" / "jobs.db")
    schedules.add("prints", "1m", now=0.0)
    first = queue_due(schedules, jobs, now=100.0)
    assert len(first) == 1
    assert jobs.table.get(first[0]).params == {"prune": True, "trigger": "schedule"}
    schedules.add("prints", "1m", now=0.0)  # due again, but the first is still queued
    assert queue_due(schedules, jobs, now=200.0) == []
    schedules.remove("prints")
    assert schedules.entries() == []
