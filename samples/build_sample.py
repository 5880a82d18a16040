"""Rebuild `samples/heritage-sample/` from the shared heritage data, deterministically.

Takes 200 Dutch printers' devices (every near-duplicate pair the data names
among the first ones, then an even spread over the catalogue) and 50 Getty
krater photographs (an even spread), downscales each image to at most 320 px
(JPEG quality 85), and writes one `manifest.csv` in vitrine's column names,
with both licence files and a README.

Usage:
    python samples/build_sample.py [--source ../shared/data] [--out samples/heritage-sample]
"""

import argparse
import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "samples" / "heritage-sample"
MAX_SIDE = 320
QUALITY = 85
DPD_COUNT = 200
DPD_PAIRS = 12
GETTY_COUNT = 50
DPD_LICENCE = "MIT (see LICENSE-dpd); the devices themselves are early-modern prints"
GETTY_LICENCE = "CC BY 4.0, (c) 2019 J. Paul Getty Trust (see LICENSE-getty.md)"
COLUMNS = (
    "id",
    "image",
    "caption",
    "title",
    "iconclass",
    "date",
    "place",
    "collection",
    "url",
    "license",
    "printers",
    "motto",
    "accession_number",
    "attribution",
    "shape",
    "subject",
)

Row = dict[str, str]


def read_csv(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def spread(rows: list[Row], count: int) -> list[Row]:
    """`count` rows evenly spaced over `rows`, keeping their order."""
    if count >= len(rows):
        return list(rows)
    step = len(rows) / count
    return [rows[int(index * step)] for index in range(count)]


def pick_dpd(folder: Path) -> list[Row]:
    """Near-duplicate pairs first (so the duplicates view has something to find), then a spread."""
    rows = [row for row in read_csv(folder / "metadata.csv") if row["has_record"] == "True"]
    by_image = {row["image"]: row for row in rows}
    chosen: dict[str, Row] = {}
    for pair in read_csv(folder / "near_duplicate_candidates.csv"):
        if len(chosen) >= 2 * DPD_PAIRS:
            break
        if pair["image_a"] in by_image and pair["image_b"] in by_image:
            for image in (pair["image_a"], pair["image_b"]):
                chosen[by_image[image]["dpd_id"]] = by_image[image]
    rest = [
        row for row in sorted(rows, key=lambda row: row["dpd_id"]) if row["dpd_id"] not in chosen
    ]
    for row in spread(rest, DPD_COUNT - len(chosen)):
        chosen[row["dpd_id"]] = row
    return sorted(chosen.values(), key=lambda row: row["dpd_id"])


def duplicate_pairs(folder: Path, rows: list[Row]) -> int:
    """How many of the source's near-duplicate pairs have both images among `rows`."""
    images = {row["image"] for row in rows}
    pairs = read_csv(folder / "near_duplicate_candidates.csv")
    return sum(1 for pair in pairs if pair["image_a"] in images and pair["image_b"] in images)


def dpd_records(folder: Path, rows: list[Row]) -> Iterator[tuple[Path, Row]]:
    for row in rows:
        start, end = row["year_min"], row["year_max"]
        date = start if start == end else f"{start}/{end}" if start and end else start or end
        printers = [name for name in row["printers"].split(";") if name]
        motto = row["motto_la"] or row["motto_nl"] or row["motto_other"]
        title = f"Printer's device of {printers[0]}" if printers else "Printer's device"
        record = {
            "id": row["dpd_id"],
            "image": f"images/dpd/{row['dpd_id']}.jpg",
            "caption": row["caption_en"],
            "title": f"{title}: {motto}" if motto else title,
            "iconclass": row["iconclass"],
            "date": date,
            "place": row["places"].split(";")[0],
            "collection": "dpd",
            "url": "",
            "license": DPD_LICENCE,
            "printers": row["printers"],
            "motto": motto,
        }
        yield folder / row["image"], record


def getty_records(folder: Path) -> Iterator[tuple[Path, Row]]:
    rows = read_csv(folder / "metadata.csv")
    seen: set[str] = set()
    for row in spread(rows, GETTY_COUNT):
        record_id = row["figure_ids"] or Path(row["image"]).stem
        if record_id in seen:
            record_id = Path(row["image"]).stem
        seen.add(record_id)
        yield (
            folder / row["image"],
            {
                "id": record_id,
                "image": f"images/getty/{record_id}.jpg",
                "caption": row["alt_text"] or row["caption"],
                "title": row["caption"],
                "date": row["date"],
                "collection": "getty-kraters",
                "url": row["getty_link"],
                "license": GETTY_LICENCE,
                "accession_number": row["accession_number"],
                "attribution": row["attribution"],
                "shape": row["shape_name"],
                "subject": row["subject"],
            },
        )


def downscale(source: Path, target: Path) -> None:
    with Image.open(source) as image:
        picture = image.convert("RGB")
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    picture.save(target, "JPEG", quality=QUALITY, optimize=True)


README = """# heritage-sample

A small collection for `vitrine demo` and for trying vitrine out: {dpd} Dutch
printers' devices and {getty} photographs of Athenian red-figure kraters, each
image downscaled to at most {side} px (JPEG quality {quality}). `manifest.csv`
uses vitrine's own column names, so it ingests without any `--map`:

    vitrine ingest samples/heritage-sample/manifest.csv --collection sample

Regenerate it (deterministically) with `python samples/build_sample.py`.

## Sources and licences

- `images/dpd/`, rows with `collection` = `dpd`: printers' marks from the Dutch
  Printers' Devices database (github.com/epoz/DPD, commit 7359be5d), with their
  English captions, Iconclass notations, places of activity and years of use.
  They include {pairs} pairs the source lists as near duplicates (the same block
  printed twice, or a re-cut copy). Licence: MIT, `LICENSE-dpd` (as published in
  that repository); the devices themselves are early-modern prints (1477-1712).
- `images/getty/`, rows with `collection` = `getty-kraters`: object
  photographs from the J. Paul Getty Museum's Corpus Vasorum Antiquorum
  fascicule 10 (github.com/thegetty/cva10, commit fe383cec), with what each
  photograph shows (its alt text, as `caption`), its figure caption (as `title`),
  dates (BCE ranges such as `-490 to -480`) and links to the Getty's records.
  Licence: CC BY 4.0, (c) 2019 J. Paul Getty Trust, `LICENSE-getty.md`.

## Columns

`id, image, caption, title, iconclass` (`;`-separated), `date` (EDTF or a BCE
range), `place, collection, url, license`, and extra columns kept with each
item: `printers, motto` (devices), `accession_number, attribution, shape,
subject` (kraters).
"""


def build(source: Path, out: Path) -> int:
    """Write the sample into `out` (replacing its images); returns the item count."""
    dpd_folder = source / "dpd-printers-devices"
    getty_folder = source / "getty-cva10-kraters"
    devices = pick_dpd(dpd_folder)
    records = [*dpd_records(dpd_folder, devices), *getty_records(getty_folder)]
    shutil.rmtree(out / "images", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for image, record in records:
        downscale(image, out / record["image"])
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for _, record in records:
            writer.writerow({column: record.get(column, "") for column in COLUMNS})
    shutil.copyfile(dpd_folder / "LICENSE", out / "LICENSE-dpd")
    shutil.copyfile(getty_folder / "LICENSE.md", out / "LICENSE-getty.md")
    (out / "README.md").write_text(
        README.format(
            dpd=DPD_COUNT,
            getty=GETTY_COUNT,
            side=MAX_SIDE,
            quality=QUALITY,
            pairs=duplicate_pairs(dpd_folder, devices),
        ),
        encoding="utf-8",
    )
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="sample folder to write")
    arguments = parser.parse_args()
    count = build(arguments.source, arguments.out)
    print(f"{count} items written to {arguments.out}")


if __name__ == "__main__":
    main()
