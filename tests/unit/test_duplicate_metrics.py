"""The arithmetic of duplicate detection on hand-made scores: groups, sweeps, ranking."""

import math

import pytest

from services.duplicate_metrics import (
    best_f1,
    connected_groups,
    group_members,
    ndcg,
    retrieval_scores,
    sweep,
    threshold_grid,
)


def test_connected_groups_are_transitive_and_separate() -> None:
    groups = connected_groups([("a", "b"), ("c", "b"), ("x", "y"), ("y", "x")])
    assert sorted(map(sorted, groups)) == [["a", "b", "c"], ["x", "y"]]
    assert connected_groups([]) == []


def test_group_members_lists_the_others() -> None:
    others = group_members([{"a", "b", "c"}, {"x", "y"}])
    assert others["a"] == {"b", "c"}
    assert others["y"] == {"x"}


def test_sweep_counts_every_distinct_score_once() -> None:
    scored = [(0.9, True), (0.9, False), (0.8, True), (0.5, False), (0.5, False)]
    points = sweep(scored)
    assert [round(p.threshold, 3) for p in points] == [0.85, 0.65, 0.499]
    first, second, last = points
    assert (first.true_positives, first.false_positives, first.false_negatives) == (1, 1, 1)
    assert (first.precision, first.recall) == (0.5, 0.5)
    assert (second.true_positives, second.false_positives) == (2, 1)
    assert second.precision == pytest.approx(2 / 3) and second.recall == 1.0
    assert second.f1 == pytest.approx(0.8)
    assert (last.true_positives, last.false_positives, last.false_negatives) == (2, 3, 0)


def test_sweep_thresholds_separate_the_scores_they_stand_for() -> None:
    scored = [(0.97, True), (0.95, True), (0.40, False)]
    for point in sweep(scored):
        found = [score >= point.threshold for score, _ in scored]
        assert sum(found) == point.true_positives + point.false_positives


def test_best_f1_prefers_precision_then_the_stricter_threshold() -> None:
    points = sweep([(0.9, True), (0.8, True), (0.7, False), (0.6, False)])
    best = best_f1(points)
    assert best.f1 == 1.0 and best.threshold == pytest.approx(0.75)
    with pytest.raises(ValueError):
        best_f1([])


def test_sweep_without_pairs_or_positives() -> None:
    assert sweep([]) == []
    (point,) = sweep([(0.3, False)])
    assert (point.precision, point.recall, point.f1) == (0.0, 0.0, 0.0)


def test_threshold_grid() -> None:
    assert threshold_grid(0.5, 1.0, 3) == [1.0, 0.75, 0.5]
    assert threshold_grid(0.7, 0.7, 5) == [0.7]


def test_ndcg_binary_relevance() -> None:
    assert ndcg(["a", "b"], {"a", "b"}, 10) == 1.0
    assert ndcg(["x", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg(["x", "y", "a"], {"a"}, 2) == 0.0
    assert ndcg(["a"], set(), 10) == 0.0


def test_retrieval_scores_on_a_small_ranking() -> None:
    neighbours = {
        "q1": [("d1", 0.99), ("x", 0.97), ("d2", 0.90)],  # both found by rank 3; d2 below t
        "q2": [("x", 0.99), ("y", 0.98), ("z", 0.97), ("w", 0.96), ("e1", 0.95), ("v", 0.2)],
        "q3": [],  # its only duplicate is missing from the results
    }
    relevant = {"q1": {"d1", "d2"}, "q2": {"e1"}, "q3": {"f"}, "q4": set()}
    scores = retrieval_scores(neighbours, relevant, threshold=0.95, depth=10)
    assert scores.queries == 3  # q4 has no duplicate to find
    assert scores.top1 == pytest.approx(1 / 3)
    assert scores.top5 == pytest.approx(2 / 3)
    # above 0.95: q1 keeps d1, x (1 right of 2); q2 keeps x..e1 (1 right of 5)
    assert scores.precision == pytest.approx(2 / 7)
    assert scores.recall == pytest.approx(2 / 4)
    expected_ndcg = ((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)) + 1 / math.log2(6) + 0.0) / 3
    assert scores.ndcg == pytest.approx(expected_ndcg)


def test_retrieval_scores_respect_depth() -> None:
    neighbours = {"q": [("x", 0.99), ("d", 0.98)]}
    scores = retrieval_scores(neighbours, {"q": {"d"}}, threshold=0.0, depth=1)
    assert (scores.top1, scores.top5, scores.recall, scores.ndcg) == (0.0, 0.0, 0.0, 0.0)
