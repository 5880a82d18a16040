"""Near-duplicates through the real store: known vectors, transformed images, real DPD pairs.

- Vectors written straight into a collection (originals, noisy copies, loners):
  clusters, one item's near-duplicates, groups, calibration and evaluation
  have exact answers; on both store backends.
- Generated images and transformed copies (rotation, crop, rescale, JPEG,
  grayscale, tone shift) ingested with a tiny model fine-tuned for a few steps
  on other random copies of the designs: at the calibrated threshold each copy
  must land in its original's cluster and no cluster may join two originals.
- Ten real DPD pairs among ten other devices, through the CLI.
"""

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import models
from typer.testing import CliRunner

import services.neighbours
from finetune.splits import SplitConfig
from finetune.train import TrainConfig
from ingest.runner import ingest_collection
from services.duplicate_evaluation import calibrate, evaluate
from services.duplicate_export import clusters_csv, pairs_csv
from services.duplicate_pairs import read_pairs
from services.duplicates import duplicate_groups, find_clusters, near_duplicates
from services.errors import QueryError
from services.neighbours import scan_neighbours
from services.settings import Settings
from services.store import CAPTION_VECTOR, IMAGE_VECTOR, Store, point_id
from services.wiring import Services
from tests.support.printed_designs import (
    DESIGNS,
    TRANSFORMS,
    write_training_copies,
    write_transformed_collection,
)
from tests.support.trained_tiny_model import TrainedModel, build_conv_tiny_model, train_tiny_model
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


def test_csv_exports_list_every_member_and_every_pair(
    known: tuple[Store, list[set[str]], dict[str, np.ndarray]],
) -> None:
    store, groups, _ = known
    clusters = find_clusters(store, "known", threshold=0.9)
    members = list(csv.DictReader(io.StringIO(clusters_csv(clusters))))
    assert sorted(row["id"] for row in members) == sorted(rid for group in groups for rid in group)
    pairs = list(csv.DictReader(io.StringIO(pairs_csv(clusters))))
    assert len(pairs) == sum(len(cluster.pairs) for cluster in clusters)
    assert all(row["title_a"] == f"Title of {row['id_a']}" for row in pairs)
    assert all(float(row["score"]) >= 0.9 and row["id_a"] < row["id_b"] for row in pairs)


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

# Random copies of the designs (never the test's own) on the conv tiny model. The
# run keeps the first epoch with its best validation score: a large validation
# share holds that back until hard copies are matched too. It stops five epochs
# later, after about 100 steps on one CPU thread.
DESIGN_TRAINING = TrainConfig(
    epochs=30, lr=1e-3, batch_size=16, warmup=0.1, patience=5, min_epochs=15, recall_k=1
)
DESIGN_SPLIT = SplitConfig(validation=0.4, test=0.05)
TRAINING_COPIES = 24


@pytest.fixture(scope="session")
def design_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """The conv tiny model fine-tuned to tell the designs apart, whatever their transform."""
    root = tmp_path_factory.mktemp("design-model")
    manifest = write_training_copies(root / "copies", TRAINING_COPIES)
    base = build_conv_tiny_model(root / "base")
    return train_tiny_model(root / "data", base, manifest, DESIGN_TRAINING, DESIGN_SPLIT)


def test_transformed_copies_cluster_with_their_original(
    settings: Settings, design_model: TrainedModel, tmp_path: Path
) -> None:
    manifest, pairs = write_transformed_collection(tmp_path / "prints")
    services = Services(settings.with_overrides(model=design_model.model))
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
