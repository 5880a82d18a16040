"""`vitrine collections list|info`."""

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from vitrine.context import out_console, print_json, services_from

app = typer.Typer(help="List collections and show their size, model version and vectors.")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every collection (alias) with its point count and model version."""
    services = services_from(ctx)
    infos = [services.store.info(alias) for alias in sorted(services.store.aliases())]
    if as_json:
        print_json([_info_json(info) for info in infos])
        return
    table = Table("collection", "points", "model version", "physical collection", "vector size")
    for info in infos:
        table.add_row(
            info.name, str(info.points), info.model_version, info.physical, str(info.vector_size)
        )
    out_console.print(table if infos else "No collections yet: create one with `vitrine ingest`.")


@app.command("info")
def info_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Collection name.")],
    as_json: JsonFlag = False,
) -> None:
    """Counts, model version, vector size and last ingest of one collection."""
    services = services_from(ctx)
    info = services.store.info(name)
    state = services.states.load(name)
    last = state.last_run if state else None
    if as_json:
        document = _info_json(info)
        document["source"] = state.source if state else None
        document["last_ingest"] = last.model_dump() if last else None
        print_json(document)
        return
    out_console.print(
        f"[bold]{info.name}[/]: {info.points} points, model version {info.model_version}"
    )
    out_console.print(
        f"physical collection {info.physical}, vectors of {info.vector_size} dimensions"
    )
    if state and state.source:
        out_console.print(f"source: {state.source}")
    if last:
        out_console.print(
            f"last ingest {last.started_at}: {last.seen} seen, {last.embedded} embedded, "
            f"{last.unchanged} unchanged, {last.failed} failed"
            + (f" (report: {last.report})" if last.report else "")
        )


def _info_json(info: object) -> dict[str, object]:
    document = asdict(info)  # type: ignore[call-overload]
    document["physical_collection"] = document.pop("physical")
    return document
