"""Query latency and bulk load of the embedded store, at collection scale.

Builds a collection of N unit vectors (512-d, as ViT-B-32) with catalogue-like
payloads through `services.store`, then times: the bulk load (upserts plus
index build), reopening the store, (a) encode a text with ViT-B-32's text
tower (random weights: same cost as trained ones) + search, (b) store-only
search, (c) store-only search filtered on Iconclass + a year range, and the
recall@10 of (b) and (c) against exact search. Reference: a brute-force numpy
dot product over the same vectors, in the same process.

The vectors are `clustered` by default: a 64-dimensional structure plus noise,
as embeddings of real images have (their effective rank is far below 512);
`--vectors uniform` gives the worst case for any approximate index.

    .venv/bin/python benchmarks/query.py [--sizes 100000 1000000] [--backend edge]
"""

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import open_clip
from common import EMBEDDING_DIM, embedding_like, emit, percentiles

from services.embedder import Embedder
from services.filters import Filters
from services.models import LoadedModel, ModelSpec
from services.settings import Settings
from services.store import CAPTION_VECTOR, IMAGE_VECTOR, Store, new_point, physical_name

DIM = EMBEDDING_DIM
TOPS = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
BATCH = 2048
FILTER = Filters(iconclass=("35F",), years=(1500, 1550))


class Vectors:
    """The benchmark's vectors, made batch by batch from a seed (1M x 512 floats is 2 GB)."""

    def __init__(self, size: int, kind: str, seed: int = 0) -> None:
        self.size, self.kind, self.seed = size, kind, seed

    def batches(self) -> Iterator[tuple[int, np.ndarray]]:
        rng = np.random.default_rng(self.seed)
        for start in range(0, self.size, BATCH):
            yield start, self.draw(rng, min(BATCH, self.size - start))

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.kind == "clustered":
            return embedding_like(rng, count)
        noise = rng.normal(size=(count, DIM)).astype(np.float32)
        return noise / np.linalg.norm(noise, axis=1, keepdims=True)

    def all(self) -> np.ndarray:
        return np.concatenate([batch for _, batch in self.batches()])


def payload(index: int) -> dict[str, object]:
    top = TOPS[index % len(TOPS)]
    year = 1400 + index % 400
    return {
        "record_id": f"r{index}",
        "iconclass_path": [top, f"{top}5", f"{top}5F"],
        "year_start": year,
        "year_end": year + 10,
    }


def matches_filter(index: int) -> bool:
    year = 1400 + index % 400
    return TOPS[index % len(TOPS)] == "3" and year <= 1550 and year + 10 >= 1500


def build(store: Store, physical: str, vectors: Vectors) -> None:
    """Image and caption vectors for every point (the caption one as a shifted copy)."""
    store.create_physical(physical, DIM)
    for start, batch in vectors.batches():
        captions = np.roll(batch, 1, axis=1)
        store.upsert(
            physical,
            [
                new_point(
                    pid=start + offset,
                    vectors={IMAGE_VECTOR: row.tolist(), CAPTION_VECTOR: caption.tolist()},
                    payload=payload(start + offset),
                )
                for offset, (row, caption) in enumerate(zip(batch, captions, strict=True))
            ],
        )
    store.optimize(physical)


def text_embedder() -> Embedder:
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    loaded = LoadedModel(
        spec=ModelSpec("ViT-B-32"),
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer("ViT-B-32"),
        version="random",
        dim=DIM,
        image_size=224,
    )
    return Embedder(loaded, __import__("torch").device("cpu"))


def exact_top(all_vectors: np.ndarray, probe: np.ndarray, mask: np.ndarray | None) -> set[int]:
    scores = all_vectors @ probe
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    return {int(i) for i in np.argpartition(-scores, 10)[:10]}


def measure(args: argparse.Namespace, size: int, folder: Path, embedder: Embedder) -> dict:
    settings = Settings(data_dir=folder / str(size), store_backend=args.backend, _env_file=None)
    physical = physical_name(f"bench{size}", "random")
    vectors = Vectors(size, args.vectors)
    store = Store.open(settings)
    started = time.perf_counter()
    build(store, physical, vectors)
    load_seconds = time.perf_counter() - started
    store.close()
    started = time.perf_counter()
    store = Store.open(settings)
    store.count(physical)
    reopen_seconds = time.perf_counter() - started

    all_vectors = vectors.all()
    mask = np.array([matches_filter(index) for index in range(size)])
    probes = vectors.draw(np.random.default_rng(99), args.queries)
    query_filter = FILTER.to_qdrant()
    timings: dict[str, list[float]] = {
        name: [] for name in ("numpy", "store", "filtered", "text_end_to_end")
    }
    recall: dict[str, list[float]] = {"store": [], "filtered": []}
    # The exact answers first, so that no 2 GB numpy scan runs between two timed
    # queries: a user's queries follow each other with nothing of the kind between.
    wanted: dict[str, list[set[int]]] = {"store": [], "filtered": []}
    for probe in probes:
        tick = time.perf_counter()
        wanted["store"].append(exact_top(all_vectors, probe, None))
        timings["numpy"].append(time.perf_counter() - tick)
        wanted["filtered"].append(exact_top(all_vectors, probe, mask))
    for name, condition in (("store", None), ("filtered", query_filter)):
        for probe, exact in zip(probes, wanted[name], strict=True):
            tick = time.perf_counter()
            hits = store.query(physical, probe.tolist(), query_filter=condition, limit=10)
            timings[name].append(time.perf_counter() - tick)
            recall[name].append(len({int(str(hit.id)) for hit in hits} & exact) / 10)
    embedder.encode_texts(["warm-up"])
    for _ in probes:
        tick = time.perf_counter()
        vector = embedder.encode_texts(["a lion rampant holding a sword"])[0]
        store.query(physical, vector.tolist(), query_filter=None, limit=10)
        timings["text_end_to_end"].append(time.perf_counter() - tick)
    store.close()
    figures = {name: percentiles(values) for name, values in timings.items()}
    return {
        "points": size,
        "load_seconds": round(load_seconds, 1),
        "reopen_seconds": round(reopen_seconds, 2),
        **figures,
        "recall_at_10": {name: round(float(np.mean(values)), 3) for name, values in recall.items()},
        "filtered_fraction": round(float(mask.mean()), 4),
        "store_vs_numpy_p50": round(
            figures["store"]["p50_ms"] / max(figures["numpy"]["p50_ms"], 1e-6), 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--backend", choices=["edge", "local"], default="edge")
    parser.add_argument("--vectors", choices=["clustered", "uniform"], default="clustered")
    parser.add_argument("--folder", type=Path, help="where to build (default: a temporary folder)")
    args = parser.parse_args()
    embedder = text_embedder()
    results = []
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        for size in args.sizes:
            result = measure(args, size, Path(folder), embedder)
            print(result, flush=True)
            results.append(result)
    emit(
        {"benchmark": "query", "backend": args.backend, "vectors": args.vectors, "results": results}
    )


if __name__ == "__main__":
    main()
