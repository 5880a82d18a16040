"""What every command shares: the settings with its flags applied, and output helpers."""

import json
import sys
from typing import Any

import typer
from rich.console import Console

from services.settings import Settings
from services.wiring import Services

err_console = Console(stderr=True)
out_console = Console()


def services_from(ctx: typer.Context, **overrides: object) -> Services:
    """Services built from the environment/.env settings plus command-line overrides."""
    settings: Settings = ctx.obj
    return Services(settings.with_overrides(**overrides))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
