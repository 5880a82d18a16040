"""Scheduled re-ingestion: new, changed and deleted records are picked up by sha256."""

import csv
import time
from pathlib import Path

from ingest.job_handlers import job_handlers
from ingest.runner import ingest_collection
from services.jobs import Jobs
from services.schedules import queue_due
from services.settings import Settings
from services.store import point_id
from services.wiring import Services
from tests.support.sample_data import draw, write_sample_collection


def _edit_source(manifest: Path) -> None:
    """A new image with its row; the row of item-002 removed."""
    draw((10, 200, 200), "circle", variant=5).save(manifest.parent / "images" / "new.png")
    with manifest.open(encoding="utf-8", newline="") as stream:
        rows = [row for row in csv.reader(stream) if row[0] != "item-002"]
    rows.append(["item-new", "images/new.png", "a cyan circle"] + [""] * (len(rows[0]) - 3))
    with manifest.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(rows)


def test_the_schedule_reingests_only_what_changed(tmp_path: Path, settings: Settings) -> None:
    manifest = write_sample_collection(tmp_path / "source", count=6)
    services = Services(settings)
    ingest_collection(services, "prints", manifest)
    physical = services.store.resolve("prints")
    before = {
        str(p.id): p.payload["ingested_at"]  # type: ignore[index]
        for p in services.store.scroll(physical)
    }
    services.schedules.add("prints", "1s")
    _edit_source(manifest)
    jobs = Jobs(settings.data_dir, job_handlers(services))

    def tick() -> None:
        queue_due(services.schedules, jobs)
        services.release_store()

    assert jobs.work(until_idle=True, poll=0.05, tick=tick) == 0  # not due yet
    time.sleep(1.05)
    assert jobs.work(until_idle=True, poll=0.05, tick=tick) == 1
    assert "store" not in services.__dict__  # an idle worker lets others open the store
    ids = {str(p.payload["record_id"]) for p in services.store.scroll(physical)}  # type: ignore[index]
    assert "item-new" in ids and "item-002" not in ids and len(ids) == 6
    run = services.states.load("prints").history[-1]  # type: ignore[union-attr]
    assert (run.trigger, run.embedded, run.pruned, run.unchanged) == ("schedule", 1, 1, 5)
    after = {str(p.id): p.payload["ingested_at"] for p in services.store.scroll(physical)}  # type: ignore[index]
    kept = set(before) - {point_id("prints", "item-002")}
    assert {pid: after[pid] for pid in kept} == {pid: before[pid] for pid in kept}
    entry = services.schedules.get("prints")
    assert entry.last_job is not None and jobs.table.get(entry.last_job).status == "done"
    services.close()
