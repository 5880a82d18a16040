"""`vitrine schedule add|list|remove`: re-ingest collections from their source on a schedule."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from vitrine.context import out_console, print_json, services_from

app = typer.Typer(help="Re-ingest collections from their remembered source on a schedule.")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameArgument = Annotated[str, typer.Argument(help="Collection name.")]


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds") if stamp else ""


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: NameArgument,
    every: Annotated[
        str,
        typer.Option(
            "--every", help="An interval (30m, 6h, 1d) or a cron expression ('0 3 * * *', UTC)."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Re-ingest NAME (new, changed and deleted records) at this rhythm; `vitrine worker` runs it."""
    services = services_from(ctx)
    state = services.states.load(name)
    if state is None or not state.source:
        out_console.print(
            f"[yellow]Note:[/] {name!r} has no remembered source yet; its scheduled runs fail "
            f"until it is ingested once with `vitrine ingest SOURCE --collection {name}`."
        )
    entry = services.schedules.add(name, every)
    if as_json:
        print_json(entry.to_json())
        return
    out_console.print(f"{name}: re-ingested every {entry.every} by `vitrine worker`.")


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every scheduled collection with its rhythm, last and next run."""
    entries = services_from(ctx).schedules.entries()
    if as_json:
        print_json([entry.to_json() for entry in entries])
        return
    if not entries:
        out_console.print("Nothing scheduled: `vitrine schedule add NAME --every 6h`.")
        return
    table = Table("collection", "every", "last run", "next run", "last job")
    for entry in entries:
        table.add_row(
            entry.collection,
            entry.every,
            _when(entry.last_run),
            _when(entry.next_run),
            entry.last_job or "",
        )
    out_console.print(table)


@app.command("remove")
def remove_command(ctx: typer.Context, name: NameArgument) -> None:
    """Stop re-ingesting NAME on a schedule."""
    services_from(ctx).schedules.remove(name)
    out_console.print(f"{name}: no longer scheduled.")
