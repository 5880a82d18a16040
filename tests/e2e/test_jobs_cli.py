"""`vitrine schedule`, `vitrine jobs` and `vitrine collections reembed` as a user runs them."""

from typer.testing import CliRunner

from services.settings import Settings
from services.wiring import Services
from vitrine.cli import app


def test_schedule_and_jobs_commands(settings: Settings) -> None:
    runner = CliRunner()
    env = {"VITRINE_DATA_DIR": str(settings.data_dir)}
    added = runner.invoke(app, ["schedule", "add", "maps", "--every", "6h"], env=env)
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["schedule", "list", "--json"], env=env)
    assert '"every": "6h"' in listed.output
    bad = runner.invoke(app, ["schedule", "add", "maps", "--every", "soon"], env=env)
    assert bad.exit_code != 0
    queued = runner.invoke(
        app, ["collections", "reembed", "maps", "--model", "v2", "--json"], env=env
    )
    assert queued.exit_code == 0, queued.output
    job_id = Services(settings).jobs.table.recent()[0].id
    assert job_id in runner.invoke(app, ["jobs", "list", "--json"], env=env).output
    cancelled = runner.invoke(app, ["jobs", "cancel", job_id, "--json"], env=env)
    assert '"status": "cancelled"' in cancelled.output
    shown = runner.invoke(app, ["jobs", "show", job_id], env=env)
    assert "cancel requested" in shown.output
    assert runner.invoke(app, ["schedule", "remove", "maps"], env=env).exit_code == 0
