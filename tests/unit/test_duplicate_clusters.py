"""From neighbour lists to pairs, clusters and the CSV a user opens."""

import csv
import io

from services.duplicates import DuplicatePair, build_clusters, pairs_from_neighbours
from vitrine.commands.duplicates import clusters_csv


def test_pairs_are_symmetric_once_and_the_threshold_is_inclusive() -> None:
    neighbours = {
        "a": [("b", 0.98), ("c", 0.90)],
        "b": [("a", 0.98), ("d", 0.95)],
        "d": [("b", 0.95), ("d", 1.0)],  # an item never pairs with itself
    }
    assert pairs_from_neighbours(neighbours, 0.95) == [
        DuplicatePair("a", "b", 0.98),
        DuplicatePair("b", "d", 0.95),
    ]
    assert pairs_from_neighbours(neighbours, 0.99) == []


def test_clusters_are_components_largest_first() -> None:
    pairs = [
        DuplicatePair("x1", "x2", 0.99),
        DuplicatePair("a", "b", 0.96),
        DuplicatePair("b", "c", 0.97),
        DuplicatePair("y1", "y2", 0.995),
    ]
    clusters = build_clusters(pairs, {"a": "Armillary sphere", "c": "Anchor"})
    assert [[m.id for m in cluster.members] for cluster in clusters] == [
        ["a", "b", "c"],
        ["y1", "y2"],  # the closer pair of the two of size 2 first
        ["x1", "x2"],
    ]
    assert [cluster.id for cluster in clusters] == [1, 2, 3]
    first = clusters[0]
    assert (first.size, first.max_score, first.min_score) == (3, 0.97, 0.96)
    assert [(m.id, m.score, m.title) for m in first.members] == [
        ("a", 0.96, "Armillary sphere"),
        ("b", 0.97, ""),
        ("c", 0.97, "Anchor"),
    ]
    assert {(p.a, p.b) for p in first.pairs} == {("a", "b"), ("b", "c")}
    assert first.to_json()["members"][0] == {"id": "a", "score": 0.96, "title": "Armillary sphere"}
    assert build_clusters([]) == []


def test_clusters_csv_has_one_row_per_member() -> None:
    clusters = build_clusters([DuplicatePair("a", "b", 0.9712)], {"a": 'Device, "Leiden"'})
    rows = list(csv.reader(io.StringIO(clusters_csv(clusters))))
    assert rows == [
        ["cluster", "size", "id", "score", "title", "cluster_min_score"],
        ["1", "2", "a", "0.9712", 'Device, "Leiden"', "0.9712"],
        ["1", "2", "b", "0.9712", "", "0.9712"],
    ]
