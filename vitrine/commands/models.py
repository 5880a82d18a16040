"""`vitrine models list|show|promote|export`: the model versions in the registry."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from finetune.registry import Registry
from ingest.job_handlers import enqueue_reembed_all
from services.errors import ConfigError
from vitrine.context import out_console, print_json, services_from

app = typer.Typer(help="List, inspect, promote and export fine-tuned model versions.")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
VersionArgument = Annotated[str, typer.Argument(help="Model version.")]


def _registry(ctx: typer.Context) -> Registry:
    return Registry(services_from(ctx).settings.registry_path)


def _test_value(card: dict[str, Any], model: str, metric: str) -> str:
    value = card.get("metrics", {}).get("test", {}).get(model, {}).get(metric)
    return "–" if value is None else f"{value:.3f}"


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every version with its parent, alpha, test Recall@1 and warnings; * marks the default."""
    entries = _registry(ctx).versions()
    if as_json:
        print_json(
            [
                {
                    "version": entry.version,
                    "promoted": entry.promoted,
                    "parent": entry.card.get("parent"),
                    "created_at": entry.card.get("created_at"),
                    "alpha": entry.card.get("alpha"),
                    "warnings": entry.card.get("warnings", []),
                    "folder": str(entry.folder),
                }
                for entry in entries
            ]
        )
        return
    if not entries:
        out_console.print("No model versions yet: make one with `vitrine finetune`.")
        return
    table = Table(
        "", "version", "parent", "created", "alpha", "base t2i R@1", "new t2i R@1", "warnings"
    )
    for entry in entries:
        card = entry.card
        table.add_row(
            "*" if entry.promoted else "",
            entry.version,
            str(card.get("parent", "")),
            str(card.get("created_at", "")),
            str(card.get("alpha", "")),
            _test_value(card, "base", "t2i_r1"),
            _test_value(card, "wise", "t2i_r1"),
            str(len(card.get("warnings", []))),
        )
    out_console.print(table)


@app.command("show")
def show_command(ctx: typer.Context, version: VersionArgument, as_json: JsonFlag = False) -> None:
    """A version's model card."""
    registry = _registry(ctx)
    card = registry.card(version)
    if as_json:
        print_json(card)
        return
    out_console.print(f"[bold]{version}[/] in {registry.folder(version)}")
    out_console.print(json.dumps(card, indent=2, ensure_ascii=False), highlight=False)


@app.command("promote")
def promote_command(
    ctx: typer.Context,
    version: VersionArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even though the run has warnings.")
    ] = False,
) -> None:
    """Make a version the default model and queue re-embedding of every collection."""
    registry = _registry(ctx)
    warnings = registry.card(version).get("warnings") or []
    if warnings and not force:
        raise ConfigError(
            f"{version!r} has warnings ({'; '.join(w.split(':')[0] for w in warnings)}); look at "
            f"`vitrine models show {version}` and add --force to promote it anyway"
        )
    pointer = registry.promote(version)
    queued = enqueue_reembed_all(services_from(ctx), version)
    out_console.print(
        f"{version} is now the default model for new ingests"
        + (f" (was {pointer['previous']})" if pointer["previous"] else "")
        + f". Queued {len(queued)} re-embed job(s), one per collection; `vitrine worker` runs "
        "them and switches each collection once its new version is built and checked."
    )


@app.command("export")
def export_command(
    ctx: typer.Context,
    version: VersionArgument,
    path: Annotated[Path, typer.Argument(help="New folder to copy the version to.")],
) -> None:
    """Copy a version folder (HF hub layout, loadable with local-dir:PATH)."""
    destination = _registry(ctx).export(version, path)
    out_console.print(f"{version} exported to {destination} (load it with local-dir:{destination})")
