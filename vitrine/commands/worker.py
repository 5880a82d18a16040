"""`vitrine worker`: run queued jobs and scheduled re-ingests."""

import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from ingest.job_handlers import job_handlers
from services.jobs import Jobs
from services.schedules import queue_due
from vitrine.context import err_console, services_from


def worker_command(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once no job is waiting.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 2.0,
) -> None:
    """Run background jobs (ingest, re-embed) and the re-ingest schedule.

    Stop it with Ctrl-C or SIGTERM: a job cut short resumes when a worker starts again.
    With the embedded store, the worker opens the store only while a job runs, so
    `vitrine search` works between jobs; a job that finds the store busy is retried.
    """
    services = services_from(ctx)
    jobs = Jobs(services.settings.data_dir, job_handlers(services))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        err_console.print("Stopping after the current job.")
        stop.set()

    def between_jobs() -> None:
        queue_due(services.schedules, jobs)
        services.release_store()  # an idle worker leaves the embedded store to others

    signal.signal(signal.SIGTERM, request_stop)
    try:
        ran = jobs.work(
            until_idle=until_idle,
            poll=poll,
            stop=stop,
            tick=between_jobs,
        )
    finally:
        services.close()
    err_console.print(f"worker stopped after {ran} jobs")
