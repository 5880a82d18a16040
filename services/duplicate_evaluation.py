"""Calibrate the duplicate threshold and measure duplicate finding on labelled pairs.

- `calibrate`: the image similarity of every labelled pair, then precision,
  recall and F1 of "similarity >= t is a duplicate" at every threshold; the
  best F1 picks the threshold. A file that lists duplicates only gets random
  unlisted pairs as non-duplicates (seeded, and the result says how many).
- `evaluate`: each labelled item's nearest neighbours from Qdrant, scored
  against its labelled duplicates: precision, recall and F1 above the
  threshold, top-1 and top-5 accuracy, nDCG.

Both work with any model a collection was built with: they read the stored
vectors and ask Qdrant, nothing else.
"""

from dataclasses import dataclass
from typing import Any

from services.duplicate_metrics import (
    RetrievalScores,
    ThresholdPoint,
    best_f1,
    retrieval_scores,
    sweep,
    threshold_grid,
)
from services.duplicate_pairs import LabelledPair, PairFile, duplicate_sets, sample_negatives
from services.errors import QueryError
from services.neighbours import DEFAULT_NEIGHBOURS, all_record_ids, image_vectors, neighbours_of
from services.store import Store

NEGATIVES_PER_POSITIVE = 10
"""Random non-duplicate pairs drawn per labelled duplicate when a file has none."""
TABLE_ROWS = 11
TOP_K = 5
"""The deepest of the top-k accuracies reported: neighbours are searched at least this deep."""


@dataclass(frozen=True)
class Calibration:
    """Precision, recall and F1 over labelled pairs, and the threshold with the best F1."""

    points: tuple[ThresholdPoint, ...]
    best: ThresholdPoint
    positives: int
    negatives: int
    negatives_sampled: int
    seed: int
    missing: tuple[str, ...]
    unchecked: int

    def table(self, rows: int = TABLE_ROWS) -> list[ThresholdPoint]:
        """Evenly spaced thresholds over the range the pairs span, plus the best one."""
        scores = [point.threshold for point in self.points]
        grid = threshold_grid(min(scores), max(scores), rows)
        chosen = {_nearest(self.points, value) for value in grid} | {self.best}
        return sorted(chosen, key=lambda point: -point.threshold)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.best.threshold,
            "best": self.best.to_json(),
            "positives": self.positives,
            "negatives": self.negatives,
            "negatives_sampled": self.negatives_sampled,
            "seed": self.seed,
            "missing": list(self.missing),
            "unchecked": self.unchecked,
            "table": [point.to_json() for point in self.table()],
        }


def _nearest(points: tuple[ThresholdPoint, ...], value: float) -> ThresholdPoint:
    return min(points, key=lambda point: abs(point.threshold - value))


def _present(
    store: Store, collection: str, pairs: tuple[LabelledPair, ...]
) -> tuple[list[LabelledPair], tuple[str, ...]]:
    """The pairs whose two items the collection has, and the ids it lacks."""
    ids = sorted({rid for pair in pairs for rid in (pair.a, pair.b)})
    found = set(image_vectors(store, collection, ids))
    missing = tuple(rid for rid in ids if rid not in found)
    return [pair for pair in pairs if pair.a in found and pair.b in found], missing


def _similarities(
    store: Store, collection: str, pairs: list[LabelledPair]
) -> list[tuple[float, bool]]:
    """(cosine similarity of the two images, is duplicate) for each pair."""
    vectors = image_vectors(store, collection, {rid for p in pairs for rid in (p.a, p.b)})
    return [(float(vectors[p.a] @ vectors[p.b]), p.duplicate) for p in pairs]


def calibrate(store: Store, collection: str, pair_file: PairFile, *, seed: int = 0) -> Calibration:
    """Sweep thresholds over the labelled pairs and pick the one with the best F1.

    Raises:
        QueryError: no labelled duplicate has both of its items in the collection.
    """
    pairs, missing = _present(store, collection, pair_file.pairs)
    positives = [pair for pair in pairs if pair.duplicate]
    if not positives:
        raise QueryError(
            f"None of the duplicate pairs in {pair_file.path} has both items in {collection!r} "
            "(ids are the collection's record ids; for image paths, their file names)."
        )
    sampled: list[LabelledPair] = []
    if all(pair.duplicate for pair in pairs):
        ids = all_record_ids(store, collection)
        sampled = sample_negatives(ids, positives, NEGATIVES_PER_POSITIVE * len(positives), seed)
        pairs = pairs + sampled
    points = tuple(sweep(_similarities(store, collection, pairs)))
    return Calibration(
        points=points,
        best=best_f1(points),
        positives=len(positives),
        negatives=len(pairs) - len(positives),
        negatives_sampled=len(sampled),
        seed=seed,
        missing=missing,
        unchecked=pair_file.unchecked,
    )


@dataclass(frozen=True)
class Evaluation:
    """Duplicate finding measured on labelled pairs, and where its threshold came from."""

    scores: RetrievalScores
    calibration: Calibration | None
    missing: tuple[str, ...]
    unchecked: int

    @property
    def threshold_source(self) -> str:
        return "calibrated on the same pairs" if self.calibration else "given"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.scores.to_json(),
            "threshold_source": self.threshold_source,
            "missing": list(self.missing),
            "unchecked": self.unchecked,
            "calibration": self.calibration.to_json() if self.calibration else None,
        }


def evaluate(
    store: Store,
    collection: str,
    pair_file: PairFile,
    *,
    threshold: float | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    seed: int = 0,
) -> Evaluation:
    """How well each labelled item's nearest neighbours find its labelled duplicates.

    Duplicates are transitive (A~B and B~C make A~C). Each item with a labelled
    duplicate is a query; its neighbours are searched to the larger of
    `neighbours` and its largest duplicate group, so recall is never capped by
    the depth. Without a `threshold`, the one calibrated on the same pairs is
    used, which flatters precision and recall a little (top-1, top-5 and nDCG
    do not depend on it).

    Raises:
        QueryError: no labelled duplicate has both of its items in the collection.
    """
    pairs, missing = _present(store, collection, pair_file.pairs)
    relevant = duplicate_sets(pairs)
    if not relevant:
        raise QueryError(
            f"None of the duplicate pairs in {pair_file.path} has both items in {collection!r}."
        )
    calibration = None
    if threshold is None:
        calibration = calibrate(store, collection, pair_file, seed=seed)
        threshold = calibration.best.threshold
    depth = max(neighbours, TOP_K, max(len(others) for others in relevant.values()))
    ranked = neighbours_of(store, collection, sorted(relevant), neighbours=depth)
    scores = retrieval_scores(ranked, relevant, threshold=threshold, depth=depth)
    return Evaluation(
        scores=scores, calibration=calibration, missing=missing, unchecked=pair_file.unchecked
    )
