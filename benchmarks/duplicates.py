"""Duplicate search over a whole collection in the embedded store, at growing sizes.

Writes embedding-like 512-d unit vectors (as ViT-B-32's; `common.embedding_like`)
straight into an embedded store collection through `Store` (Qdrant Edge by
default, `--backend local` for qdrant-client's local mode): a tenth of the items
are planted groups of three near-copies (cosine about 0.97). Then times
(a) `find_clusters` at threshold 0.9 (what `vitrine duplicates` runs), and
(b) every item's k nearest neighbours with no threshold (`scan_neighbours`),
both through Qdrant's batched queries, and checks the clusters are exactly the
planted groups. References: an exact blocked numpy k-NN over the same vectors
in the same process, and, on the local mode, Qdrant's `search_matrix_pairs`
(sample = all points) at small sizes, the other batch tool Qdrant offers (Edge
has no search matrix).

The local mode answers every query by brute force over all vectors, so its
time grows with items² (items × neighbours × items / neighbours); the Edge
store and a server walk an HNSW index instead. The figures say which:
`seconds_per_item` and the fitted growth exponent between sizes.

    .venv/bin/python benchmarks/duplicates.py [--sizes 10000 20000 40000] [--neighbours 10]
        [--backend edge|local] [--matrix-sizes 250 500 1000]
"""

import argparse
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import EMBEDDING_DIM, embedding_like, emit

from services.duplicates import find_clusters
from services.neighbours import scan_neighbours
from services.settings import Settings
from services.store import IMAGE_VECTOR, Store, new_point, point_id

DIM = EMBEDDING_DIM
THRESHOLD = 0.9
GROUP = 3


def clustered_vectors(size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[set[int]]]:
    """Embedding-like unit vectors: planted groups of near-copies (a tenth of them)."""
    vectors = embedding_like(rng, size)
    groups = []
    for start in range(0, size // 10 - GROUP + 1, GROUP):
        base = vectors[start]
        for member in range(start + 1, start + GROUP):
            noise = rng.normal(size=DIM).astype(np.float32)
            copy = base + 0.25 * noise / np.linalg.norm(noise)
            vectors[member] = copy / np.linalg.norm(copy)
        groups.append(set(range(start, start + GROUP)))
    return vectors, groups


def load(store: Store, alias: str, vectors: np.ndarray) -> None:
    physical = store.ensure_collection(alias, "bench", DIM)
    for start in range(0, len(vectors), 1024):
        store.upsert(
            physical,
            [
                new_point(
                    pid=point_id(alias, f"r{index}"),
                    vectors={IMAGE_VECTOR: vectors[index].tolist()},
                    payload={"record_id": f"r{index}", "title": f"item {index}"},
                )
                for index in range(start, min(len(vectors), start + 1024))
            ],
        )
    store.optimize(physical)


def numpy_knn(vectors: np.ndarray, neighbours: int) -> tuple[float, np.ndarray]:
    """Exact k nearest others of every row, in blocks of 1,024 rows; (seconds, indices)."""
    started = time.perf_counter()
    found = np.empty((len(vectors), neighbours), dtype=np.int64)
    for start in range(0, len(vectors), 1024):
        block = vectors[start : start + 1024] @ vectors.T
        rows = np.arange(len(block))
        block[rows, rows + start] = -np.inf
        top = np.argpartition(-block, neighbours, axis=1)[:, :neighbours]
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1)
        found[start : start + len(block)] = np.take_along_axis(top, order, axis=1)
    return time.perf_counter() - started, found


def measure(store: Store, size: int, neighbours: int, rng: np.random.Generator) -> dict[str, Any]:
    alias = f"dups{size}"
    vectors, groups = clustered_vectors(size, rng)
    started = time.perf_counter()
    load(store, alias, vectors)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    clusters = find_clusters(store, alias, threshold=THRESHOLD, neighbours=neighbours)
    cluster_seconds = time.perf_counter() - started
    found = sorted(sorted(int(m.id[1:]) for m in cluster.members) for cluster in clusters)
    planted = sorted(sorted(group) for group in groups)

    started = time.perf_counter()
    near = scan_neighbours(store, alias, neighbours=neighbours)
    knn_seconds = time.perf_counter() - started
    numpy_seconds, exact = numpy_knn(vectors, neighbours)
    agree = np.mean(
        [
            len({int(rid[1:]) for rid, _ in near[f"r{row}"]} & set(exact[row])) / neighbours
            for row in range(size)
        ]
    )
    return {
        "points": size,
        "neighbours": neighbours,
        "load_seconds": round(load_seconds, 1),
        "clusters_seconds": round(cluster_seconds, 2),
        "knn_seconds": round(knn_seconds, 2),
        "seconds_per_item": round(knn_seconds / size, 5),
        "microseconds_per_item_x_neighbour": round(1e6 * knn_seconds / (size * neighbours), 1),
        "clusters_found": len(clusters),
        "clusters_are_planted_groups": found == planted,
        "numpy_knn_seconds": round(numpy_seconds, 2),
        "knn_recall_vs_numpy": round(float(agree), 4),
    }


def matrix_reference(
    store: Store, size: int, neighbours: int, rng: np.random.Generator
) -> dict[str, float]:
    """search_matrix_pairs (sample = every point) against the batched queries, same points."""
    alias = f"matrix{size}"
    vectors, _ = clustered_vectors(size, rng)
    load(store, alias, vectors)
    physical = store.resolve(alias)
    started = time.perf_counter()
    store.client.search_matrix_pairs(physical, sample=size, limit=neighbours, using=IMAGE_VECTOR)
    matrix_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scan_neighbours(store, alias, neighbours=neighbours)
    return {
        "points": size,
        "search_matrix_pairs_seconds": round(matrix_seconds, 2),
        "batched_query_seconds": round(time.perf_counter() - started, 2),
    }


def growth(results: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Exponent b of seconds ~ points^b between the smallest and the largest size."""
    first, last = results[0], results[-1]
    if first is last:
        return None
    ratio = float(last[key]) / float(first[key])
    return round(math.log(ratio) / math.log(float(last["points"]) / float(first["points"])), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--backend", choices=["edge", "local"], default="edge")
    parser.add_argument(
        "--matrix-sizes",
        type=int,
        nargs="*",
        default=None,
        help="search_matrix_pairs reference sizes (local mode only; default 250 500 1000 there)",
    )
    args = parser.parse_args()
    if args.matrix_sizes is None:
        args.matrix_sizes = [250, 500, 1_000] if args.backend == "local" else []
    if args.matrix_sizes and args.backend == "edge":
        parser.error("Qdrant Edge has no search_matrix_pairs: use --backend local for it")
    rng = np.random.default_rng(0)
    results, matrix = [], []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), store_backend=args.backend, _env_file=None)
        store = Store.open(settings)
        for size in args.matrix_sizes:
            matrix.append(matrix_reference(store, size, args.neighbours, rng))
            print(matrix[-1], flush=True)
        for size in sorted(args.sizes):
            results.append(measure(store, size, args.neighbours, rng))
            print(results[-1], flush=True)
        store.close()
    emit(
        {
            "benchmark": "duplicates",
            "backend": args.backend,
            "method": "query_batch_points, 256 queries per request",
            "threshold": THRESHOLD,
            "results": results,
            "knn_growth_exponent": growth(results, "knn_seconds"),
            "clusters_growth_exponent": growth(results, "clusters_seconds"),
            "search_matrix_reference": matrix,
            "search_matrix_growth_exponent": growth(matrix, "search_matrix_pairs_seconds")
            if matrix
            else None,
        }
    )


if __name__ == "__main__":
    main()
