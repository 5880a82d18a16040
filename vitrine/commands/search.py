"""`vitrine search`: text, image, item and mixed queries with filters."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ingest.query_image import open_query_image
from services.filters import Filters, parse_field, parse_near, parse_years
from services.search import SearchRequest, SearchResult
from vitrine.context import out_console, print_json, services_from


def search_command(
    ctx: typer.Context,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to search.")],
    text: Annotated[
        str | None, typer.Option("--text", "-t", help="Describe what you look for.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", "-i", help="An example image file.")
    ] = None,
    like: Annotated[
        list[str] | None,
        typer.Option("--like", help="Record id of an item to find more like (repeatable)."),
    ] = None,
    weight: Annotated[
        float, typer.Option(help="Weight of the text against the image when both are given (0..1).")
    ] = 0.5,
    negative: Annotated[
        list[str] | None,
        typer.Option("--not", help="Text of what results should not look like (repeatable)."),
    ] = None,
    iconclass: Annotated[
        list[str] | None,
        typer.Option(help="Iconclass notation; matches all below it (repeatable: any of)."),
    ] = None,
    aat: Annotated[
        list[str] | None, typer.Option(help="Getty AAT id (repeatable: any of).")
    ] = None,
    years: Annotated[
        str | None, typer.Option(help="START:END; items whose dates overlap it.")
    ] = None,
    place: Annotated[
        list[str] | None, typer.Option(help="Place name (repeatable: any of).")
    ] = None,
    near: Annotated[
        str | None, typer.Option(help="LAT,LON,KM: items within KM of a point.")
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--collection-field", help="KEY=VALUE on a catalogue column kept under extra."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many results.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")] = 0,
    min_score: Annotated[
        float | None, typer.Option(help="Drop results scoring below this.")
    ] = None,
    facets: Annotated[
        bool, typer.Option("--facets", help="Also count Iconclass, AAT and places.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    model: Annotated[
        str | None, typer.Option(help="Override the model (normally the collection's own).")
    ] = None,
) -> None:
    """Search a collection. Combine --text, --image and --like freely; add filters to narrow."""
    services = services_from(ctx, model=model)
    filters = Filters(
        iconclass=tuple(iconclass or ()),
        aat=tuple(aat or ()),
        years=parse_years(years) if years else None,
        place=tuple(place or ()),
        near=parse_near(near) if near else None,
        extra=dict(parse_field(item) for item in field or ()),
    )
    request = SearchRequest(
        collection=collection,
        text=text,
        image=open_query_image(image, services.settings) if image else None,
        like=tuple(like or ()),
        text_weight=weight,
        negative=tuple(negative or ()),
        filters=filters,
        limit=limit,
        offset=offset,
        min_score=min_score,
        facets=facets,
    )
    result = services.searcher.search(request)
    if as_json:
        hits = [hit.to_json() for hit in result.hits]
        print_json({"hits": hits, "facets": result.facets} if facets else hits)
        return
    _print_table(result)


def _print_table(result: SearchResult) -> None:
    if not result.hits:
        out_console.print("No results. Loosen the filters or try other words.")
    table = Table("#", "id", "score", "title / caption", "date", "place")
    for rank, hit in enumerate(result.hits, start=1):
        payload = hit.payload
        label = payload.get("title") or payload.get("caption") or ""
        years = _years(payload.get("year_start"), payload.get("year_end"))
        places = ", ".join(payload.get("place") or [])
        table.add_row(str(rank), hit.id, f"{hit.score:.3f}", str(label)[:60], years, places)
    if result.hits:
        out_console.print(table)
    for name, counts in result.facets.items():
        out_console.print(
            f"[bold]{name}[/]: " + ", ".join(f"{value} ({count})" for value, count in counts)
        )


def _years(start: int | None, end: int | None) -> str:
    if start is None:
        return ""
    return str(start) if end in (None, start) else f"{start}–{end}"
