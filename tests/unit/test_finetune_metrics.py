"""Our retrieval metrics against a brute-force computation written here, independently."""

import math

import numpy as np
import pytest

from finetune.metrics import model_metrics, retrieval_metrics, selection_score, topk_accuracy


def brute_force(similarity: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    """Rank every candidate by hand: count how many score higher than each relevant one."""
    recalls = {1: [], 5: [], 10: []}
    reciprocal, ndcg = [], []
    for query, wanted in enumerate(relevant):
        row = similarity[query]
        ranks = sorted(1 + sum(1 for other in row if other > row[good]) for good in wanted)
        for k in recalls:
            recalls[k].append(1.0 if ranks[0] <= k else 0.0)
        reciprocal.append(1.0 / ranks[0])
        dcg = sum(1.0 / math.log2(rank + 1) for rank in ranks if rank <= 10)
        ideal = sum(
            1.0 / math.log2(position + 1) for position in range(1, min(len(wanted), 10) + 1)
        )
        ndcg.append(dcg / ideal)
    return {
        "r1": float(np.mean(recalls[1])),
        "r5": float(np.mean(recalls[5])),
        "r10": float(np.mean(recalls[10])),
        "mrr": float(np.mean(reciprocal)),
        "ndcg10": float(np.mean(ndcg)),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_metrics_equal_brute_force_with_one_relevant_item(seed: int) -> None:
    rng = np.random.default_rng(seed)
    similarity = rng.normal(size=(40, 40))
    similarity += np.eye(40) * rng.uniform(0, 3)  # some signal, so every metric is exercised
    relevant = [{index} for index in range(40)]
    ours = retrieval_metrics(similarity, relevant)
    assert ours == pytest.approx(brute_force(similarity, relevant), abs=1e-12)


def test_retrieval_metrics_equal_brute_force_with_several_relevant_items() -> None:
    rng = np.random.default_rng(7)
    similarity = rng.normal(size=(25, 60))
    relevant = [
        set(rng.choice(60, size=rng.integers(1, 14), replace=False).tolist()) for _ in range(25)
    ]
    ours = retrieval_metrics(similarity, relevant)
    assert ours == pytest.approx(brute_force(similarity, relevant), abs=1e-12)


def test_perfect_and_reversed_rankings() -> None:
    identity = np.eye(12)
    assert retrieval_metrics(identity, [{i} for i in range(12)]) == {
        "r1": 1.0,
        "r5": 1.0,
        "r10": 1.0,
        "mrr": 1.0,
        "ndcg10": 1.0,
    }
    worst = -np.eye(12)
    found = retrieval_metrics(worst, [{i} for i in range(12)])
    assert found["r10"] == 0.0 and found["mrr"] == pytest.approx(1 / 12)


def test_model_metrics_groups_identical_captions_and_scores_zero_shot() -> None:
    rng = np.random.default_rng(3)
    images = rng.normal(size=(6, 8))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    captions = ["a", "b", "a", "c", "b", "d"]
    texts = images[[0, 1, 3, 5]]  # unique captions in first-seen order: a b c d
    classes = images[[0, 3]]
    found = model_metrics(
        images,
        texts,
        captions,
        class_vectors=classes,
        class_targets=[{0}, {1}, {0}, {1}, set(), {0}],
    )
    assert found["t2i_r1"] == 1.0 and found["i2t_r1"] >= 0.5
    assert set(found) == {
        "t2i_r1",
        "t2i_r5",
        "t2i_r10",
        "i2t_r1",
        "i2t_r5",
        "i2t_r10",
        "mrr",
        "ndcg10",
        "zs_top1",
        "zs_top5",
    }
    assert found["zs_top5"] == 1.0
    assert model_metrics(images, texts, captions)["zs_top1"] is None


def test_topk_accuracy_by_hand() -> None:
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.1, 0.7, 0.6]])
    targets = [{0}, {1}, {2}]
    assert topk_accuracy(scores, targets, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(scores, targets, 2) == pytest.approx(1.0)
    assert topk_accuracy(scores, [set(), set(), set()], 1) is None


def test_selection_score_is_the_mean_of_both_directions() -> None:
    assert selection_score({"t2i_r5": 0.4, "i2t_r5": 0.6}, 5) == pytest.approx(0.5)
