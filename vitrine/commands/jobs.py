"""`vitrine jobs list|show|cancel`: background jobs and where they stand."""

from typing import Annotated

import typer
from rich.table import Table

from services.job_table import Job
from vitrine.context import out_console, print_json, services_from

app = typer.Typer(help="List, inspect and cancel background jobs (ingest, re-embed).")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobArgument = Annotated[str, typer.Argument(help="Job id (from `vitrine jobs list`).")]


def _progress(job: Job) -> str:
    return f"{job.done}/{job.total}" if job.total else str(job.done)


@app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="Only jobs with this status: queued, running, done, failed, cancelled."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Recent jobs, newest first."""
    jobs = services_from(ctx).jobs.table.recent(status, limit)
    if as_json:
        print_json([job.to_json() for job in jobs])
        return
    if not jobs:
        out_console.print("No jobs yet.")
        return
    table = Table("id", "kind", "collection", "status", "progress", "created", "error")
    for job in jobs:
        table.add_row(
            job.id,
            job.kind,
            job.collection or "",
            job.status,
            _progress(job),
            job.created_at,
            job.error or "",
        )
    out_console.print(table)


@app.command("show")
def show_command(ctx: typer.Context, job_id: JobArgument, as_json: JsonFlag = False) -> None:
    """One job: its parameters, status, progress, result and log."""
    table = services_from(ctx).jobs.table
    job = table.get(job_id)
    log = table.logs(job_id)
    if as_json:
        print_json(job.to_json() | {"log": [{"at": at, "message": text} for at, text in log]})
        return
    out_console.print(
        f"[bold]{job.id}[/] {job.kind} {job.collection or ''}: {job.status}, "
        f"progress {_progress(job)}, attempts {job.attempts}",
        highlight=False,
    )
    if job.error:
        out_console.print(f"error: {job.error}", highlight=False)
    if job.result:
        out_console.print(f"result: {job.result}", highlight=False)
    for at, text in log:
        out_console.print(f"{at}  {text}", highlight=False)


@app.command("cancel")
def cancel_command(ctx: typer.Context, job_id: JobArgument, as_json: JsonFlag = False) -> None:
    """Cancel a queued job, or ask a running one to stop at its next step."""
    job = services_from(ctx).jobs.table.request_cancel(job_id)
    if as_json:
        print_json(job.to_json())
        return
    if job.status == "running":
        out_console.print(f"{job.id}: asked to stop; it stops at its next step.")
    else:
        out_console.print(f"{job.id}: {job.status}.")
