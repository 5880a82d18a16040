"""Retrieval and zero-shot metrics from a similarity matrix; pure numpy.

A query may have several relevant candidates (two prints with the same
caption). Recall@K is the share of queries with at least one relevant
candidate in the top K, MRR the mean reciprocal rank of the first relevant
one, nDCG@10 uses binary relevance. Ties in score keep candidate order.

>>> import numpy as np
>>> scores = np.array([[0.9, 0.1], [0.8, 0.2]])
>>> retrieval_metrics(scores, [{0}, {1}])["r1"]
0.5
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32] | npt.NDArray[np.float64]

METRIC_NAMES: tuple[str, ...] = (
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
)
"""The metrics of one model, in the order tables show them."""

RECALL_KS = (1, 5, 10)


def first_relevant_ranks(similarity: Matrix, relevant: Sequence[set[int]]) -> npt.NDArray[np.int64]:
    """1-based rank of the best-placed relevant candidate for each query (0: none relevant)."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    ranks = np.zeros(len(relevant), dtype=np.int64)
    for query, wanted in enumerate(relevant):
        if not wanted:
            continue
        hits = np.isin(order[query], list(wanted))
        ranks[query] = int(np.argmax(hits)) + 1
    return ranks


def ndcg_at(similarity: Matrix, relevant: Sequence[set[int]], k: int = 10) -> float:
    """Mean nDCG@k with binary relevance over queries that have a relevant candidate."""
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for query, wanted in enumerate(relevant):
        if not wanted:
            continue
        gains = np.isin(order[query], list(wanted)).astype(np.float64)
        ideal = discounts[: min(len(wanted), k)].sum()
        values.append(float((gains * discounts[: len(gains)]).sum() / ideal))
    return float(np.mean(values)) if values else 0.0


def retrieval_metrics(similarity: Matrix, relevant: Sequence[set[int]]) -> dict[str, float]:
    """Recall@1/5/10 (`r1`, `r5`, `r10`), `mrr` and `ndcg10` of queries (rows) over candidates.

    Args:
        similarity: (queries, candidates) scores, higher is closer.
        relevant: for each query, the candidate columns that answer it;
            queries with none are left out of every mean.
    """
    ranks = first_relevant_ranks(similarity, relevant)
    ranks = ranks[ranks > 0]
    if ranks.size == 0:
        return {"r1": 0.0, "r5": 0.0, "r10": 0.0, "mrr": 0.0, "ndcg10": 0.0}
    found = {f"r{k}": float(np.mean(ranks <= k)) for k in RECALL_KS}
    found["mrr"] = float(np.mean(1.0 / ranks))
    found["ndcg10"] = ndcg_at(similarity, relevant, 10)
    return found


def topk_accuracy(scores: Matrix, targets: Sequence[set[int]], k: int) -> float | None:
    """Share of rows whose top `k` classes hold one of their targets (None: no row has one)."""
    rows = [row for row, wanted in enumerate(targets) if wanted]
    if not rows:
        return None
    order = np.argsort(-scores[rows], axis=1, kind="stable")[:, :k]
    hits = [bool(set(order[i].tolist()) & targets[row]) for i, row in enumerate(rows)]
    return float(np.mean(hits))


def caption_relevance(captions: Sequence[str]) -> tuple[list[str], list[set[int]], list[set[int]]]:
    """Unique captions, the items each one describes, and each item's caption.

    Returns:
        (queries, text_to_images, image_to_texts): text query `q` is answered by
        the items in `text_to_images[q]`; image `i` by the text `image_to_texts[i]`.
    """
    queries = list(dict.fromkeys(captions))
    position = {caption: index for index, caption in enumerate(queries)}
    text_to_images: list[set[int]] = [set() for _ in queries]
    for item, caption in enumerate(captions):
        text_to_images[position[caption]].add(item)
    image_to_texts = [{position[caption]} for caption in captions]
    return queries, text_to_images, image_to_texts


def model_metrics(
    image_vectors: Matrix,
    text_vectors: Matrix,
    captions: Sequence[str],
    *,
    class_vectors: Matrix | None = None,
    class_targets: Sequence[set[int]] = (),
) -> dict[str, float | None]:
    """The ten metrics of one model on one evaluation set.

    Args:
        image_vectors: (items, dim) unit vectors.
        text_vectors: (unique captions, dim) unit vectors, in the order of
            `caption_relevance(captions)[0]`.
        captions: each item's caption (the one it is evaluated with).
        class_vectors: (classes, dim) unit vectors of the zero-shot prompts.
        class_targets: each item's true classes (empty: not classified).

    Returns:
        {name: value} for `METRIC_NAMES`; `mrr` and `ndcg10` are text->image;
        zero-shot values are None without classes or targets.
    """
    _, text_to_images, image_to_texts = caption_relevance(captions)
    t2i = retrieval_metrics(text_vectors @ image_vectors.T, text_to_images)
    i2t = retrieval_metrics(image_vectors @ text_vectors.T, image_to_texts)
    found: dict[str, float | None] = {f"t2i_r{k}": t2i[f"r{k}"] for k in RECALL_KS}
    found.update({f"i2t_r{k}": i2t[f"r{k}"] for k in RECALL_KS})
    found["mrr"] = t2i["mrr"]
    found["ndcg10"] = t2i["ndcg10"]
    zero_shot = None if class_vectors is None else image_vectors @ class_vectors.T
    found["zs_top1"] = None if zero_shot is None else topk_accuracy(zero_shot, class_targets, 1)
    found["zs_top5"] = None if zero_shot is None else topk_accuracy(zero_shot, class_targets, 5)
    return found


def selection_score(metrics: dict[str, float | None], k: int = 5) -> float:
    """What early stopping and the WiSE-FT alpha maximise: mean of both Recall@k."""
    return (float(metrics[f"t2i_r{k}"] or 0.0) + float(metrics[f"i2t_r{k}"] or 0.0)) / 2
