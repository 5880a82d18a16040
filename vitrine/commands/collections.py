"""`vitrine collections list|info|export|import`."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.transfer import export_collection, import_collection
from vitrine.context import err_console, out_console, print_json, services_from

app = typer.Typer(
    help="List collections, show their size and model version, move them between stores."
)

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


@app.command("export")
def export_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Collection name.")],
    path: Annotated[
        Path,
        typer.Argument(
            help="File to write, e.g. prints.vitrine.jsonl.gz (gzip if it ends in .gz)."
        ),
    ],
    no_thumbnails: Annotated[
        bool, typer.Option("--no-thumbnails", help="Leave the thumbnails out (smaller file).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a collection (vectors, payloads, thumbnails, model version) to one portable file.

    Import it into another store (embedded or a Qdrant server) with `vitrine collections import`.
    """
    services = services_from(ctx)
    with _progress_bar("export", quiet=as_json) as advance:
        summary = export_collection(
            services, name, path, thumbnails=not no_thumbnails, progress=advance
        )
    if as_json:
        print_json(asdict(summary))
        return
    out_console.print(
        f"[bold]{summary.collection}[/]: {summary.points} points and {summary.thumbnails} "
        f"thumbnails written to {summary.path} (model version {summary.model_version})"
    )


@app.command("import")
def import_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file written by `vitrine collections export`.")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Collection name in this store (default: the exported name)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load an exported collection into this store; searchable once every point is in."""
    services = services_from(ctx)
    with _progress_bar("import", quiet=as_json) as advance:
        summary = import_collection(services, path, name=name, progress=advance)
    if as_json:
        print_json(asdict(summary))
        return
    out_console.print(
        f"[bold]{summary.collection}[/]: {summary.points} points and {summary.thumbnails} "
        f"thumbnails imported into {summary.physical}"
    )
    for note in summary.notes:
        err_console.print(f"[yellow]Note:[/] {note}", highlight=False)


@contextmanager
def _progress_bar(label: str, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A points counter on stderr when it is a terminal."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed} points"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda count: bar.advance(task, count)
