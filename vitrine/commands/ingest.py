"""`vitrine ingest`: a manifest or image folder into a searchable collection."""

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.pipeline import IngestSummary
from ingest.runner import ingest_collection
from vitrine.context import err_console, out_console, print_json, services_from


def ingest_command(
    ctx: typer.Context,
    source: Annotated[
        Path | None,
        typer.Argument(
            help="CSV/TSV/JSONL manifest or image folder; omit to re-ingest the remembered one."
        ),
    ] = None,
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Collection name (created if new).")
    ] = ...,  # type: ignore[assignment]
    map_flags: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN[:SEP], e.g. caption=caption_en or place=places:; (repeatable).",
        ),
    ] = None,
    mapping_file: Annotated[
        Path | None,
        typer.Option("--mapping", help="A TOML/JSON file with [columns] and [separators]."),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete items no longer in the source.")
    ] = False,
    lang: Annotated[str, typer.Option(help="Language of Iconclass labels in the payload.")] = "en",
    model: Annotated[
        str | None, typer.Option(help="Model: open_clip name, hf-hub:ID or local-dir:PATH.")
    ] = None,
    pretrained: Annotated[
        str | None, typer.Option(help="Pretrained tag for an open_clip name.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Images per forward pass.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, help="Decoding processes (0: one per core).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
) -> None:
    """Embed a catalogue into a collection. Bad rows and images are skipped and reported."""
    services = services_from(
        ctx,
        model=model,
        pretrained=pretrained,
        device=device,
        batch_size=batch_size,
        decode_workers=workers,
    )
    show_bar = sys.stderr.isatty() and not as_json
    with Progress(
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} items/s"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show_bar,
    ) as bar:
        task = bar.add_task("ingest", total=None, rate="–")

        def advance(count: int) -> None:
            bar.advance(task, count)
            elapsed = bar.tasks[0].elapsed or 0
            if elapsed > 0:
                bar.update(task, rate=f"{bar.tasks[0].completed / elapsed:.1f}")

        summary = ingest_collection(
            services,
            collection,
            source,
            map_flags=map_flags or (),
            mapping_file=mapping_file,
            prune=prune,
            lang=lang,
            progress=advance,
        )
    if as_json:
        print_json(summary.to_json())
    else:
        _print_summary(summary)


def _print_summary(summary: IngestSummary) -> None:
    out_console.print(
        f"[bold]{summary.collection}[/]: {summary.seen} seen, {summary.embedded} embedded, "
        f"{summary.unchanged} unchanged, {summary.updated} metadata updated, {summary.failed} failed "
        f"in {summary.seconds:.1f} s"
    )
    if summary.embedded == 0 and summary.updated == 0 and summary.failed == 0 and summary.seen:
        out_console.print("Nothing changed since the last run: nothing was embedded.")
    if summary.date_unparsed:
        out_console.print(
            f"{summary.date_unparsed} dates could not be read; those items have no year range."
        )
    if summary.missing:
        verb = (
            "deleted" if summary.pruned else "still in the collection (use --prune to delete them)"
        )
        out_console.print(f"{summary.missing} items are no longer in the source: {verb}.")
    if summary.report:
        out_console.print(f"Problems are listed in {summary.report}")
