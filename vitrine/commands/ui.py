"""`vitrine ui` and `vitrine demo`: the Streamlit app, and the app on a shipped sample.

The command becomes `streamlit run ui/app.py` (the process is replaced, so
signals reach the server directly); the app gets this command's settings
through VITRINE_* environment variables, so it builds the same `Settings` the
command has, flags included.
"""

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import SecretStr
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

import ui
from ingest.runner import ingest_collection
from services.errors import ModelUnavailableError, SourceError
from services.settings import Settings
from services.wiring import Services
from vitrine.context import err_console, out_console

APP = Path(ui.__file__).resolve().parent / "app.py"
PROJECT_ROOT = APP.parents[1]
SAMPLE_MANIFEST = PROJECT_ROOT / "samples" / "heritage-sample" / "manifest.csv"
SAMPLE_COLLECTION = "sample"


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings()` in the app equal to `settings`."""
    environment = dict(os.environ)
    for name in type(settings).model_fields:
        key = f"VITRINE_{name.upper()}"
        value = getattr(settings, name)
        if value is None:
            environment.pop(key, None)
        elif isinstance(value, SecretStr):
            environment[key] = value.get_secret_value()
        elif isinstance(value, Path):
            environment[key] = str(value.expanduser().resolve())
        elif isinstance(value, bool):
            environment[key] = "true" if value else "false"
        else:
            environment[key] = str(value)
    # The app script imports `ui` and `services` from this project.
    paths = [str(PROJECT_ROOT), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return environment


def streamlit_command(port: int, host: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def run_app(settings: Settings, port: int, host: str) -> NoReturn:
    """Become the Streamlit server (this process is replaced: Ctrl+C or a signal stops it)."""
    out_console.print(f"Starting the vitrine app on http://{host}:{port} (Ctrl+C stops it).")
    sys.stdout.flush()
    sys.stderr.flush()
    command = streamlit_command(port, host)
    os.execve(command[0], command, settings_environment(settings))


def ui_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
) -> None:
    """Open the search app in the browser, over the configured store."""
    run_app(ctx.obj, port, host)


def ingest_sample(settings: Settings) -> None:
    """Ingest the shipped sample into collection `sample` unless it is there already."""
    if not SAMPLE_MANIFEST.is_file():
        raise SourceError(
            f"The sample collection is not at {SAMPLE_MANIFEST}: run `vitrine demo` from a "
            "checkout of the vitrine repository (make demo)."
        )
    services = Services(settings)
    try:
        if services.store.exists(SAMPLE_COLLECTION):
            out_console.print(f"Collection {SAMPLE_COLLECTION!r} is there already.")
            return
        out_console.print(
            f"Ingesting the sample collection into {SAMPLE_COLLECTION!r} with "
            f"{services.model_spec.describe()}…"
        )
        services.embedder()  # a model that cannot load fails here, before any progress
        with Progress(
            TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), console=err_console
        ) as bar:
            task = bar.add_task("ingest", total=None)
            summary = ingest_collection(
                services,
                SAMPLE_COLLECTION,
                SAMPLE_MANIFEST,
                progress=lambda count: bar.advance(task, count),
            )
        out_console.print(
            f"{summary.embedded} items embedded, {summary.failed} failed "
            f"in {summary.seconds:.1f} s."
        )
    except ModelUnavailableError as error:
        raise ModelUnavailableError(
            f"{error}\nThe demo embeds the sample with the default model "
            f"({services.model_spec.describe()}). To run it with a model folder on this "
            "machine instead: VITRINE_MODEL=local-dir:/path/to/model vitrine demo"
        ) from error
    finally:
        services.close()


def demo_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
) -> None:
    """Ingest the shipped sample collection (once) and open the search app on it."""
    settings: Settings = ctx.obj
    ingest_sample(settings)
    run_app(settings, port, host)
