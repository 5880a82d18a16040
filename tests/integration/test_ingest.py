"""Ingest through the real store and tiny model: formats, idempotence, bad input."""

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ingest.runner import ingest_collection
from services.errors import SourceError
from services.settings import Settings
from services.store import physical_name, point_id
from services.thumbnails import THUMBNAIL_SIZE, thumbnail_path
from services.wiring import Services
from tests.support.sample_data import draw, sample_items, write_sample_collection


@pytest.fixture
def services(settings: Settings) -> Services:
    wired = Services(settings)
    yield wired
    wired.close()


@pytest.fixture
def collection_dir(tmp_path: Path) -> Path:
    write_sample_collection(tmp_path / "catalogue", count=12)
    return tmp_path / "catalogue"


def read_rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def write_rows(manifest: Path, rows: list[dict[str, str]], delimiter: str = ",") -> None:
    with manifest.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def report_entries(summary_report: str | None) -> list[dict[str, object]]:
    assert summary_report is not None
    return [json.loads(line) for line in Path(summary_report).read_text().splitlines()]


def test_first_run_embeds_everything_behind_an_alias(
    services: Services, collection_dir: Path
) -> None:
    summary = ingest_collection(services, "prints", collection_dir / "manifest.csv")
    assert (summary.seen, summary.embedded, summary.failed, summary.unchanged) == (12, 12, 0, 0)
    version = services.embedder().version
    assert services.store.aliases() == {"prints": physical_name("prints", version)}
    info = services.store.info("prints")
    assert (info.points, info.vector_size) == (12, 32)
    point = services.store.fetch(
        info.physical, [point_id("prints", "item-003")], with_vectors=True
    )[0]
    assert set(point.vector) == {"image", "caption"}
    assert point.payload["iconclass"] == ["46C215(ANCHOR)"]
    assert {"4", "46", "46C", "46C215(ANCHOR)"} <= set(point.payload["iconclass_path"])
    for item in sample_items(12):
        thumbnail = thumbnail_path(
            services.settings.data_dir, "prints", point_id("prints", item.id)
        )
        with Image.open(thumbnail) as small:
            assert small.format == "JPEG" and max(small.size) <= THUMBNAIL_SIZE


def test_rerun_embeds_nothing_and_changes_are_picked_up(
    services: Services, collection_dir: Path
) -> None:
    manifest = collection_dir / "manifest.csv"
    ingest_collection(services, "prints", manifest)
    again = ingest_collection(services, "prints")
    assert (again.embedded, again.unchanged, again.updated) == (0, 12, 0)

    draw((0, 0, 0), "circle", variant=5).save(collection_dir / sample_items(12)[4].image)
    rows = read_rows(manifest)
    rows[7]["caption"] = "a completely different caption"
    write_rows(manifest, rows)
    changed = ingest_collection(services, "prints")
    assert (changed.embedded, changed.updated, changed.unchanged) == (1, 1, 10)
    physical = services.store.resolve("prints")
    stored = services.store.fetch(physical, [point_id("prints", "item-007")])[0]
    assert stored.payload["caption"] == "a completely different caption"


def test_rows_gone_from_the_source_are_reported_then_pruned(
    services: Services, collection_dir: Path
) -> None:
    manifest = collection_dir / "manifest.csv"
    ingest_collection(services, "prints", manifest)
    write_rows(manifest, read_rows(manifest)[:-2])
    kept = ingest_collection(services, "prints")
    assert (kept.missing, kept.pruned, services.store.info("prints").points) == (2, 0, 12)
    assert {entry["id"] for entry in report_entries(kept.report) if entry["kind"] == "missing"} == {
        "item-010",
        "item-011",
    }
    pruned = ingest_collection(services, "prints", prune=True)
    assert (pruned.missing, pruned.pruned, services.store.info("prints").points) == (2, 2, 10)


def test_every_bad_input_is_skipped_counted_and_reported(
    services: Services, collection_dir: Path, tmp_path: Path
) -> None:
    manifest = collection_dir / "manifest.csv"
    rows = read_rows(manifest)
    (collection_dir / "images" / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    Image.new("RGB", (10, 10)).save(tmp_path / "outside.png")
    bad = {
        "missing-file": "images/nowhere.jpg",
        "corrupt": "images/corrupt.jpg",
        "escape": "../outside.png",
        "bad-scheme": "ftp://example.org/a.jpg",
        "unreachable": "http://127.0.0.1:9/a.jpg",
        "no-image": "",
    }
    for record_id, image in bad.items():
        rows.append({**rows[0], "id": record_id, "image": image})
    rows.append({**rows[0], "id": ""})  # a row without an id
    rows.append({**rows[1]})  # a duplicate id
    rows.append({**rows[2], "id": "odd-date", "date": "in the reign of nobody"})
    write_rows(manifest, rows)

    summary = ingest_collection(services, "prints", manifest)
    assert summary.embedded == 13  # the 12 good ones and the odd date
    assert summary.failed == len(bad) + 2
    assert summary.date_unparsed == 1
    entries = report_entries(summary.report)
    reasons = {entry["id"]: entry["reason"] for entry in entries if entry["kind"] == "image"}
    assert "not found" in reasons["missing-file"]
    assert "corrupt" in reasons["corrupt"]
    assert "escapes" in reasons["escape"]
    assert "scheme" in reasons["bad-scheme"]
    assert "unreachable" in reasons["unreachable"]
    assert "no image" in reasons["no-image"]
    row_reasons = [entry["reason"] for entry in entries if entry["kind"] == "row"]
    assert any("missing id" in reason for reason in row_reasons)
    assert any("duplicate id" in reason for reason in row_reasons)
    odd = services.store.fetch(services.store.resolve("prints"), [point_id("prints", "odd-date")])[
        0
    ]
    assert (odd.payload["year_start"], odd.payload["year_end"]) == (None, None)


@pytest.mark.parametrize("delimiter", [";", "|", "\t"])
def test_delimited_manifests(services: Services, tmp_path: Path, delimiter: str) -> None:
    root = tmp_path / "catalogue"
    write_sample_collection(root, count=6, delimiter=delimiter)
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    manifest = root / f"manifest{suffix}"
    (root / "manifest.csv").rename(manifest)
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text("\ufeff" + text, encoding="utf-8")  # a BOM, as Excel writes it
    summary = ingest_collection(services, "prints", manifest)
    assert (summary.embedded, summary.failed) == (6, 0)


def test_jsonl_and_image_folder_sources(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "catalogue"
    write_sample_collection(root, count=6)
    lines = [
        json.dumps(
            {
                "id": item.id,
                "image": item.image,
                "caption": item.caption,
                "iconclass": [item.iconclass],
            }
        )
        for item in sample_items(6)
    ]
    (root / "manifest.jsonl").write_text("\n".join([*lines, "{broken json"]) + "\n")
    from_jsonl = ingest_collection(services, "from-jsonl", root / "manifest.jsonl")
    assert (from_jsonl.embedded, from_jsonl.failed) == (6, 1)

    folder = tmp_path / "scans"
    shutil.copytree(root / "images", folder)
    (folder / "item-001.txt").write_text("a green square, from its sidecar")
    from_folder = ingest_collection(services, "from-folder", folder)
    assert from_folder.embedded == 6
    point = services.store.fetch(
        services.store.resolve("from-folder"), [point_id("from-folder", "item-001")]
    )[0]
    assert point.payload["caption"] == "a green square, from its sidecar"


def test_mapping_is_remembered_for_the_next_run(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "catalogue"
    write_sample_collection(root, count=6)
    rows = read_rows(root / "manifest.csv")
    renamed = [
        {"object": r["id"], "file": r["image"], "beschrijving": r["caption"], "datering": r["date"]}
        for r in rows
    ]
    write_rows(root / "manifest.csv", renamed)
    flags = ["id=object", "image=file", "caption=beschrijving", "date=datering"]
    first = ingest_collection(services, "mapped", root / "manifest.csv", map_flags=flags)
    assert first.embedded == 6
    second = ingest_collection(services, "mapped")
    assert (second.unchanged, second.failed) == (6, 0)


def test_an_interrupted_run_resumes_without_embedding_twice(
    services: Services, collection_dir: Path
) -> None:
    seen = 0

    def stop_midway(count: int) -> None:
        nonlocal seen
        seen += count
        if seen >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_collection(services, "prints", collection_dir / "manifest.csv", progress=stop_midway)
    done = services.store.info("prints").points
    assert 0 < done < 12
    resumed = ingest_collection(services, "prints")
    assert (resumed.embedded, resumed.unchanged) == (12 - done, done)
    assert services.store.info("prints").points == 12


def test_unreadable_source_raises_a_clear_error(services: Services, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        ingest_collection(services, "prints", tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="no remembered source"):
        ingest_collection(services, "never-seen")


def test_a_re_ingest_without_a_named_model_uses_the_collection_s_own(
    services: Services, collection_dir: Path, tmp_path: Path
) -> None:
    ingest_collection(services, "prints", collection_dir / "manifest.csv")
    services.close()
    unnamed = Services(Settings(data_dir=services.settings.data_dir, device="cpu", _env_file=None))
    try:
        again = ingest_collection(unnamed, "prints")
        assert (again.embedded, again.unchanged) == (0, 12)
    finally:
        unnamed.close()
