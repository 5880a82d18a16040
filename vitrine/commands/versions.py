"""`vitrine collections reembed|rollback`: move a collection to another model version."""

from typing import Annotated

import typer

from ingest.job_handlers import enqueue_reembed
from services.versions import rollback
from vitrine.context import out_console, print_json, services_from

NameArgument = Annotated[str, typer.Argument(help="Collection name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def reembed_command(
    ctx: typer.Context,
    name: NameArgument,
    model: Annotated[
        str,
        typer.Option("--model", help="Model version (from `vitrine models list`) or a model spec."),
    ],
    keep: Annotated[
        int, typer.Option("--keep", help="Old versions to keep for rollback after the switch.")
    ] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Queue a re-embed: build NAME with another model, check it, switch without downtime."""
    job = enqueue_reembed(services_from(ctx), name, model, keep=keep)
    if as_json:
        print_json(job.to_json())
        return
    out_console.print(
        f"queued job {job.id}: re-embed {name} with {model}. `vitrine worker` runs it; "
        f"`vitrine jobs show {job.id}` follows it."
    )


def rollback_command(ctx: typer.Context, name: NameArgument, as_json: JsonFlag = False) -> None:
    """Point NAME back at the physical collection it used before the last switch."""
    services = services_from(ctx)
    try:
        result = rollback(services, name)
    finally:
        services.close()
    if as_json:
        print_json({"collection": name, "from": result.from_physical, "to": result.to_physical})
        return
    out_console.print(f"{name} now uses {result.to_physical} (was {result.from_physical}).")
