"""The arithmetic of near-duplicate detection: groups, threshold sweeps, ranking scores.

Pure functions over ids and scores; nothing here talks to Qdrant, so each piece
is tested on hand-made numbers.

- `connected_groups`: clusters are the connected components of the graph whose
  edges are the pairs at or above a threshold (so A~B and B~C put A, B and C
  together even when A and C score lower).
- `sweep` / `best_f1`: precision, recall and F1 of "score >= t means duplicate"
  over labelled pairs, at every threshold that changes the outcome.
- `retrieval_scores`: how well each item's nearest neighbours find its labelled
  duplicates: precision, recall and F1 above a threshold, top-1 and top-5
  accuracy, and nDCG.
"""

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx

LOWEST_MARGIN = 0.001
"""How far below the lowest labelled score the most lenient threshold lies."""

Neighbours = Sequence[tuple[str, float]]
"""One item's nearest neighbours, best first: (record id, similarity)."""


def connected_groups(edges: Iterable[tuple[str, str]]) -> list[set[str]]:
    """The connected components of an undirected graph given by its edges.

    Example:
        >>> sorted(map(sorted, connected_groups([("a", "b"), ("b", "c"), ("x", "y")])))
        [['a', 'b', 'c'], ['x', 'y']]
    """
    graph = nx.Graph()
    graph.add_edges_from(edges)
    return [set(component) for component in nx.connected_components(graph)]


def group_members(groups: Iterable[Collection[str]]) -> dict[str, frozenset[str]]:
    """For every id in a group, the other ids of its group."""
    others: dict[str, frozenset[str]] = {}
    for group in groups:
        members = frozenset(group)
        for member in members:
            others[member] = members - {member}
    return others


@dataclass(frozen=True)
class ThresholdPoint:
    """The outcome of calling every labelled pair with score >= `threshold` a duplicate."""

    threshold: float
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def f1_score(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _point(threshold: float, tp: int, fp: int, positives: int) -> ThresholdPoint:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives if positives else 0.0
    return ThresholdPoint(
        threshold=threshold,
        precision=precision,
        recall=recall,
        f1=f1_score(precision, recall),
        true_positives=tp,
        false_positives=fp,
        false_negatives=positives - tp,
    )


def sweep(scored: Iterable[tuple[float, bool]]) -> list[ThresholdPoint]:
    """Precision, recall and F1 at every threshold that changes the outcome, highest first.

    Each threshold lies halfway between one distinct score and the next lower
    one (just below the lowest), so the same pairs scored again, by Qdrant or
    in another floating-point order, fall on the same side of it.

    Args:
        scored: (similarity, is duplicate) for each labelled pair.

    Returns:
        One point per distinct score; empty when there are no pairs.

    Example:
        >>> points = sweep([(0.9, True), (0.8, False), (0.7, True)])
        >>> [(round(p.threshold, 3), round(p.f1, 2)) for p in points]
        [(0.85, 0.67), (0.75, 0.5), (0.699, 0.8)]
    """
    ordered = sorted(scored, key=lambda item: -item[0])
    positives = sum(1 for _, label in ordered if label)
    points: list[ThresholdPoint] = []
    tp = fp = 0
    for index, (score, label) in enumerate(ordered):
        tp += int(label)
        fp += int(not label)
        lower = ordered[index + 1][0] if index + 1 < len(ordered) else score - 2 * LOWEST_MARGIN
        if lower < score:
            points.append(_point((score + lower) / 2, tp, fp, positives))
    return points


def best_f1(points: Sequence[ThresholdPoint]) -> ThresholdPoint:
    """The point with the highest F1; among equals, the higher precision, then threshold.

    Raises:
        ValueError: `points` is empty.
    """
    if not points:
        raise ValueError("no thresholds to choose from")
    return max(points, key=lambda point: (point.f1, point.precision, point.threshold))


def threshold_grid(low: float, high: float, steps: int) -> list[float]:
    """`steps` evenly spaced thresholds from `high` down to `low` (both included)."""
    if steps < 2 or high <= low:
        return [high]
    width = (high - low) / (steps - 1)
    return [high - index * width for index in range(steps)]


@dataclass(frozen=True)
class RetrievalScores:
    """How well nearest neighbours find each query item's labelled duplicates.

    precision, recall and f1 count the neighbours scoring >= `threshold`
    (micro-averaged over queries); top1 and top5 are the share of queries with a
    labelled duplicate at rank 1 or within the first five; ndcg is the mean
    nDCG at `depth` with binary relevance.
    """

    precision: float
    recall: float
    f1: float
    top1: float
    top5: float
    ndcg: float
    queries: int
    threshold: float
    depth: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ndcg(ranked: Sequence[str], relevant: Collection[str], depth: int) -> float:
    """Normalised discounted cumulative gain at `depth`, binary relevance.

    Example:
        >>> round(ndcg(["x", "a"], {"a"}, 10), 3)
        0.631
    """
    gains = sum(
        1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:depth]) if item in relevant
    )
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), depth)))
    return gains / ideal if ideal else 0.0


def retrieval_scores(
    neighbours: Mapping[str, Neighbours],
    relevant: Mapping[str, Collection[str]],
    *,
    threshold: float,
    depth: int,
) -> RetrievalScores:
    """Score neighbour lists against labelled duplicates.

    Args:
        neighbours: for each query id, its nearest other items, best first.
        relevant: for each query id, the ids labelled as its duplicates; only
            queries with at least one are scored.
        threshold: neighbours scoring at least this count as found (precision,
            recall, F1).
        depth: how many neighbours count (for every measure).
    """
    queries = [query for query, wanted in relevant.items() if wanted]
    found = retrieved = wanted_total = hit1 = hit5 = 0
    gain = 0.0
    for query in queries:
        wanted = relevant[query]
        ranked = list(neighbours.get(query, ()))[:depth]
        ids = [item for item, _ in ranked]
        kept = [item for item, score in ranked if score >= threshold]
        retrieved += len(kept)
        found += sum(1 for item in kept if item in wanted)
        wanted_total += len(wanted)
        hit1 += int(bool(ids) and ids[0] in wanted)
        hit5 += int(any(item in wanted for item in ids[:5]))
        gain += ndcg(ids, wanted, depth)
    count = len(queries)
    precision = found / retrieved if retrieved else 0.0
    recall = found / wanted_total if wanted_total else 0.0
    return RetrievalScores(
        precision=precision,
        recall=recall,
        f1=f1_score(precision, recall),
        top1=hit1 / count if count else 0.0,
        top5=hit5 / count if count else 0.0,
        ndcg=gain / count if count else 0.0,
        queries=count,
        threshold=threshold,
        depth=depth,
    )
