"""The `vitrine` command: thin wiring of services, ingest and ui.

Errors from the vitrine family become one readable line and exit code 1;
nothing a user can get wrong ends in a traceback.
"""

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from services.errors import VitrineError
from services.settings import Settings
from vitrine.commands import (
    collections,
    duplicates,
    finetune,
    ingest,
    jobs,
    models,
    schedule,
    search,
    ui,
    versions,
    worker,
)
from vitrine.context import err_console

app = typer.Typer(
    name="vitrine",
    help="Embed heritage collections with CLIP into Qdrant and search them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("ingest")(ingest.ingest_command)
app.command("search")(search.search_command)
app.command("ui")(ui.ui_command)
app.command("demo")(ui.demo_command)
app.command("duplicates")(duplicates.duplicates_command)
app.command("evaluate-duplicates")(duplicates.evaluate_duplicates_command)
app.add_typer(collections.app, name="collections")
app.command("finetune")(finetune.finetune_command)
app.command("evaluate")(finetune.evaluate_command)
app.add_typer(models.app, name="models")
app.add_typer(jobs.app, name="jobs")
app.add_typer(schedule.app, name="schedule")
app.command("worker")(worker.worker_command)
collections.app.command("reembed")(versions.reembed_command)
collections.app.command("rollback")(versions.rollback_command)


@app.callback()
def configure(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data folder (store, models, reports). Env: VITRINE_DATA_DIR."),
    ] = None,
    qdrant_url: Annotated[
        str | None,
        typer.Option(help="Qdrant server URL; unset: embedded store. Env: VITRINE_QDRANT_URL."),
    ] = None,
) -> None:
    """Settings come from VITRINE_* variables and .env; these flags override them."""
    ctx.obj = Settings().with_overrides(data_dir=data_dir, qdrant_url=qdrant_url)


def main() -> None:
    try:
        app()
    except VitrineError as error:
        err_console.print(f"[bold red]Error:[/] {error}", highlight=False)
        sys.exit(1)
    except ValidationError as error:
        err_console.print(f"[bold red]Configuration error:[/] {error}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("Interrupted. Run the same command again to resume.")
        sys.exit(130)
