"""Near-duplicates through the real store: known vectors, transformed images, real DPD pairs.

- Vectors written straight into a collection (originals, noisy copies, loners):
  clusters, one item's near-duplicates, groups, calibration and evaluation
  have exact answers; on both store backends.
- Generated images and transformed copies (rotation, crop, rescale, JPEG,
  grayscale, tone shift) ingested with the tiny model: each copy must land in
  its original's cluster and no cluster may join two originals.
- Ten real DPD pairs among ten other devices, through the CLI.
"""

import csv
import io
import json
import math
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from qdrant_client import models
from typer.testing import CliRunner

import services.neighbours
from ingest.runner import ingest_collection
from services.duplicate_evaluation import calibrate, evaluate
from services.duplicate_pairs import read_pairs
from services.duplicates import duplicate_groups, find_clusters, near_duplicates
from services.errors import QueryError
from services.neighbours import scan_neighbours
from services.settings import Settings
from services.store import CAPTION_VECTOR, IMAGE_VECTOR, Store, point_id
from services.wiring import Services
from vitrine.cli import app

ROOT = Path(__file__).resolve().parents[2]
DPD = ROOT.parent / "shared" / "data" / "dpd-printers-devices"
DIM = 32
ORIGINALS = 12
COPIES = 3


# -- known vectors ------------------------------------------------------------------


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def known_vectors(seed: int = 0) -> tuple[dict[str, np.ndarray], list[set[str]]]:
    """Originals (random directions), noisy copies of each, and two loners."""
    rng = np.random.default_rng(seed)
    vectors: dict[str, np.ndarray] = {}
    groups: list[set[str]] = []
    for index in range(ORIGINALS):
        original = unit(rng.normal(size=DIM))
        vectors[f"orig-{index:02d}"] = original
        group = {f"orig-{index:02d}"}
        for copy in range(COPIES):
            rid = f"copy-{index:02d}-{copy}"
            vectors[rid] = unit(original + 0.12 * unit(rng.normal(size=DIM)))
            group.add(rid)
        groups.append(group)
    vectors["lone-a"] = unit(rng.normal(size=DIM))
    vectors["lone-b"] = unit(rng.normal(size=DIM))
    return vectors, groups


def write_vectors(store: Store, alias: str, vectors: dict[str, np.ndarray]) -> None:
    physical = store.ensure_collection(alias, "known", DIM)
    store.upsert(
        physical,
        [
            models.PointStruct(
                id=point_id(alias, rid),
                vector={IMAGE_VECTOR: vector.tolist(), CAPTION_VECTOR: vector.tolist()},
                payload={"record_id": rid, "title": f"Title of {rid}"},
            )
            for rid, vector in vectors.items()
        ],
    )


def positives_file(path: Path, groups: list[set[str]]) -> Path:
    """Each copy labelled as a duplicate of its original; no negatives (they are sampled)."""
    lines = ["id_a,id_b,label"]
    for group in groups:
        original = min(rid for rid in group if rid.startswith("orig"))
        lines += [f"{original},{rid},1" for rid in sorted(group - {original})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def known(
    backend: str, fresh_settings: Callable[[str], Settings]
) -> Iterator[tuple[Store, list[set[str]], dict[str, np.ndarray]]]:
    services = Services(fresh_settings(backend))
    vectors, groups = known_vectors()
    write_vectors(services.store, "known", vectors)
    yield services.store, groups, vectors
    services.close()


def test_clusters_are_exactly_the_originals_with_their_copies(
    known: tuple[Store, list[set[str]], dict[str, np.ndarray]], tmp_path: Path
) -> None:
    store, groups, _ = known
    calibration = calibrate(store, "known", read_pairs(positives_file(tmp_path / "p.csv", groups)))
    assert calibration.negatives_sampled == calibration.negatives == 10 * 36
    assert calibration.best.f1 == 1.0
    clusters = find_clusters(store, "known", threshold=calibration.best.threshold)
    assert sorted(map(sorted, (set(m.id for m in c.members) for c in clusters))) == sorted(
        map(sorted, groups)
    )
    member = clusters[0].members[0]
    assert member.title == f"Title of {member.id}"
    assert all(
        calibration.best.threshold <= pair.score <= 1.0 for c in clusters for pair in c.pairs
    )


def test_near_duplicates_of_one_item(
    known: tuple[Store, list[set[str]], dict[str, np.ndarray]],
) -> None:
    store, _, vectors = known
    hits = near_duplicates(store, "known", "orig-03", threshold=0.9, limit=10)
    assert {hit.id for hit in hits} == {f"copy-03-{n}" for n in range(COPIES)}
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    expected = float(vectors["orig-03"] @ vectors[hits[0].id])
    assert hits[0].score == pytest.approx(expected, abs=1e-5)
    assert hits[0].payload["title"] == f"Title of {hits[0].id}"
    assert len(near_duplicates(store, "known", "orig-03", threshold=0.9, limit=2)) == 2
    assert near_duplicates(store, "known", "lone-a", threshold=0.9, limit=10) == []
    with pytest.raises(QueryError, match="no item 'nope'"):
        near_duplicates(store, "known", "nope", threshold=0.9, limit=10)


def test_duplicate_groups_map_every_member_to_its_smallest_id(
    known: tuple[Store, list[set[str]], dict[str, np.ndarray]],
) -> None:
    store, groups, _ = known
    mapping = duplicate_groups(store, "known", 0.9)
    assert mapping == {rid: min(group) for group in groups for rid in group}
    assert "lone-a" not in mapping


def test_evaluation_on_perfectly_separated_vectors(
    known: tuple[Store, list[set[str]], dict[str, np.ndarray]], tmp_path: Path
) -> None:
    store, groups, _ = known
    pair_file = read_pairs(positives_file(tmp_path / "p.csv", groups))
    result = evaluate(store, "known", pair_file)
    scores = result.scores
    assert scores.queries == ORIGINALS * (COPIES + 1)
    assert (scores.top1, scores.top5, scores.ndcg) == (1.0, 1.0, pytest.approx(1.0))
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)
    assert result.threshold_source == "calibrated on the same pairs"
    strict = evaluate(store, "known", pair_file, threshold=0.9999).scores
    assert strict.recall == 0.0 and strict.top1 == 1.0


def test_batched_scan_equals_brute_force_across_pages(
    known: tuple[Store, list[set[str]], dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, vectors = known
    monkeypatch.setattr(services.neighbours, "BATCH", 7)  # many pages and batches
    pages: list[int] = []
    found = scan_neighbours(store, "known", neighbours=4, progress=pages.append)
    assert sum(pages) == len(vectors) and max(pages) == 7
    ids = list(vectors)
    matrix = np.stack([vectors[rid] for rid in ids])
    similarity = matrix @ matrix.T
    for row, rid in enumerate(ids):
        order = [col for col in np.argsort(-similarity[row]) if col != row][:4]
        assert [other for other, _ in found[rid]] == [ids[col] for col in order]
        assert [score for _, score in found[rid]] == pytest.approx(
            [float(similarity[row, col]) for col in order], abs=1e-5
        )


# -- generated images and transformed copies -------------------------------------------

SIZE = 192
PAPER = (244, 238, 226)


def _rings(pen: ImageDraw.ImageDraw) -> None:
    for step, radius in enumerate(range(90, 5, -14)):
        fill = (40, 40, 90) if step % 2 == 0 else PAPER
        pen.ellipse((96 - radius, 96 - radius, 96 + radius, 96 + radius), fill=fill)


def _checker(pen: ImageDraw.ImageDraw) -> None:
    for y in range(0, SIZE, 32):
        for x in range(0, SIZE, 32):
            if (x // 32 + y // 32) % 2 == 0:
                pen.rectangle((x, y, x + 31, y + 31), fill=(30, 30, 30))


def _stripes(pen: ImageDraw.ImageDraw) -> None:
    for y in range(0, SIZE, 24):
        pen.rectangle((0, y, SIZE, y + 10), fill=(150, 30, 30))


def _diagonals(pen: ImageDraw.ImageDraw) -> None:
    for offset in range(-SIZE, SIZE, 28):
        pen.line((offset, 0, offset + SIZE, SIZE), fill=(20, 90, 40), width=8)


def _dots(pen: ImageDraw.ImageDraw) -> None:
    rng = random.Random(3)
    for _ in range(40):
        x, y, radius = rng.randrange(SIZE), rng.randrange(SIZE), rng.randrange(4, 14)
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(90, 60, 20))


def _star(pen: ImageDraw.ImageDraw) -> None:
    corners = []
    for step in range(10):
        angle = math.pi / 5 * step - math.pi / 2
        radius = 85 if step % 2 == 0 else 35
        corners.append((96 + radius * math.cos(angle), 96 + radius * math.sin(angle)))
    pen.polygon(corners, fill=(200, 150, 20), outline=(60, 40, 0))


def _frame(pen: ImageDraw.ImageDraw) -> None:
    pen.rectangle((10, 10, 181, 181), outline=(20, 20, 20), width=12)
    pen.rectangle((60, 60, 131, 131), fill=(20, 20, 120))


def _hatching(pen: ImageDraw.ImageDraw) -> None:
    for x in range(0, SIZE, 6):
        pen.line((x, 40, x, 150), fill=(60, 60, 60), width=2)
    pen.rectangle((0, 0, SIZE, 30), fill=(120, 20, 90))


DESIGNS = {
    "rings": _rings,
    "checker": _checker,
    "stripes": _stripes,
    "diagonals": _diagonals,
    "dots": _dots,
    "star": _star,
    "frame": _frame,
    "hatching": _hatching,
}


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=25)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "rotated": lambda image: image.rotate(8, fillcolor=PAPER),
    "cropped": lambda image: image.crop((14, 14, SIZE - 14, SIZE - 14)).resize((SIZE, SIZE)),
    "rescaled": lambda image: image.resize((SIZE // 2, SIZE // 2), Image.Resampling.BILINEAR),
    "jpeg": _jpeg,
    "grey": lambda image: ImageOps.grayscale(image).convert("RGB"),
    "toned": lambda image: ImageEnhance.Brightness(
        ImageEnhance.Contrast(image).enhance(0.8)
    ).enhance(1.1),
}


def write_transformed_collection(root: Path) -> tuple[Path, Path]:
    """Originals, their transformed copies, a manifest and a labelled-pairs file."""
    (root / "images").mkdir(parents=True)
    manifest_rows, pair_rows = [["id", "image", "caption"]], [["id_a", "id_b", "label"]]
    for name, design in DESIGNS.items():
        original = Image.new("RGB", (SIZE, SIZE), PAPER)
        design(ImageDraw.Draw(original))
        variants = {name: original} | {
            f"{name}-{how}": transform(original) for how, transform in TRANSFORMS.items()
        }
        for rid, image in variants.items():
            image.save(root / "images" / f"{rid}.png")
            manifest_rows.append([rid, f"images/{rid}.png", f"a print: {name}"])
            if rid != name:
                pair_rows.append([name, rid, "1"])
    for path, rows in ((root / "manifest.csv", manifest_rows), (root / "pairs.csv", pair_rows)):
        with path.open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows(rows)
    return root / "manifest.csv", root / "pairs.csv"


@pytest.mark.xfail(
    strict=True,
    reason="the random-weight tiny model does not separate them: its image vectors all point "
    "almost the same way (cosine 0.95-0.998 between different originals, down to 0.72-0.89 "
    "between an original and its crop); it needs the tiny model trained for a few steps",
)
def test_transformed_copies_cluster_with_their_original(settings: Settings, tmp_path: Path) -> None:
    manifest, pairs = write_transformed_collection(tmp_path / "prints")
    services = Services(settings)
    try:
        summary = ingest_collection(services, "prints", manifest)
        assert summary.embedded == len(DESIGNS) * (1 + len(TRANSFORMS))
        calibration = calibrate(services.store, "prints", read_pairs(pairs))
        clusters = find_clusters(services.store, "prints", threshold=calibration.best.threshold)
    finally:
        services.close()
    cluster_of = {member.id: cluster.id for cluster in clusters for member in cluster.members}
    for name in DESIGNS:
        for how in TRANSFORMS:
            assert cluster_of.get(f"{name}-{how}") == cluster_of.get(name) is not None
    originals_per_cluster = [
        sum(1 for member in cluster.members if member.id in DESIGNS) for cluster in clusters
    ]
    assert max(originals_per_cluster) == 1


# -- real DPD pairs through the CLI ------------------------------------------------------

DPD_PAIRS = [
    ("dpd_0936", "dpd_1449"),
    ("dpd_0660", "dpd_0663"),
    ("dpd_1597", "dpd_1603"),
    ("dpd_1369", "dpd_1371"),
    ("dpd_0378", "dpd_0429"),
    ("dpd_0423", "dpd_1166"),
    ("dpd_1380", "dpd_1425"),
    ("dpd_0018", "dpd_0432"),
    ("dpd_0302", "dpd_0872"),
    ("dpd_1374", "dpd_1442"),
]
DPD_OTHERS = [f"dpd_{number:04d}" for number in (1, 2, 3, 6, 7, 9, 12, 13, 14, 17)]


def dpd_subset(root: Path) -> tuple[Path, Path]:
    """The 20 devices of ten real pairs and ten others: manifest and candidates file."""
    wanted = {rid for pair in DPD_PAIRS for rid in pair} | set(DPD_OTHERS)
    (root / "images").mkdir(parents=True)
    with (DPD / "metadata.csv").open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        rows = [row for row in reader if row["dpd_id"] in wanted]
        fields = list(reader.fieldnames or ())
    for row in rows:
        shutil.copy(DPD / row["image"], root / row["image"])
    with (root / "metadata.csv").open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    keep = {tuple(sorted(pair)) for pair in DPD_PAIRS}
    with (DPD / "near_duplicate_candidates.csv").open(encoding="utf-8", newline="") as stream:
        lines = list(csv.reader(stream))
    chosen = [line for line in lines[1:] if (Path(line[0]).stem, Path(line[1]).stem) in keep]
    with (root / "pairs.csv").open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([lines[0], *chosen])
    assert len(rows) == len(wanted) and len(chosen) == len(DPD_PAIRS)
    return root / "metadata.csv", root / "pairs.csv"


@pytest.mark.skipif(not DPD.exists(), reason=f"{DPD} is not here")
def test_cli_on_real_dpd_pairs(settings: Settings, tmp_path: Path) -> None:
    manifest, pairs = dpd_subset(tmp_path / "dpd")
    services = Services(settings)
    try:
        mapping = ROOT / "ingest" / "mappings" / "dpd-printers-devices.toml"
        summary = ingest_collection(services, "dpd", manifest, mapping_file=mapping)
        assert summary.embedded == 30
    finally:
        services.close()
    runner = CliRunner()
    env = {"VITRINE_MODEL": settings.model, "VITRINE_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    base = ["--data-dir", str(settings.data_dir)]

    evaluated = runner.invoke(
        app, [*base, "evaluate-duplicates", "-c", "dpd", "--pairs", str(pairs), "--json"], env=env
    )
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.stdout)
    assert {"precision", "recall", "f1", "top1", "top5", "ndcg"} <= set(figures)
    assert all(0.0 <= figures[key] <= 1.0 for key in ("precision", "recall", "f1", "top1", "ndcg"))
    assert (
        figures["queries"] == 20 and figures["threshold_source"] == "calibrated on the same pairs"
    )
    assert figures["calibration"]["negatives_sampled"] == 100

    out = tmp_path / "clusters.csv"
    found = runner.invoke(
        app,
        [*base, "duplicates", "-c", "dpd", "--calibrate", str(pairs), "--csv", str(out), "--json"],
        env=env,
    )
    assert found.exit_code == 0, found.output
    report = json.loads(found.stdout)
    assert report["items"] == 30 and report["threshold"] == report["calibration"]["threshold"]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == sum(cluster["size"] for cluster in report["clusters"])

    table = runner.invoke(app, [*base, "duplicates", "-c", "dpd", "--threshold", "0.9999"], env=env)
    assert table.exit_code == 0, table.output
