"""Query latency of the embedded store: text queries end to end and filtered search.

Builds collections of 10k and 100k random unit vectors (512-d, as ViT-B-32) with
catalogue-like payloads, then times (a) encode a text with ViT-B-32's text tower
(random weights: same cost as trained ones) + search, (b) store-only search,
(c) store-only search filtered on Iconclass + a year range. Reference: a
brute-force numpy dot product over the same vectors, in the same process.

    .venv/bin/python benchmarks/query.py [--sizes 10000 100000] [--queries 50]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
from common import emit, percentiles
from qdrant_client import models

from services.embedder import Embedder
from services.filters import Filters
from services.models import LoadedModel, ModelSpec
from services.settings import Settings
from services.store import IMAGE_VECTOR, Store, physical_name

DIM = 512
TOPS = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]


def build(store: Store, size: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    physical = physical_name(f"bench{size}", "random")
    store.create_physical(physical, DIM)
    vectors = rng.normal(size=(size, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, size, 2048):
        points = []
        for index in range(start, min(size, start + 2048)):
            top = TOPS[index % len(TOPS)]
            year = 1400 + index % 400
            points.append(
                models.PointStruct(
                    id=index,
                    vector={IMAGE_VECTOR: vectors[index].tolist()},
                    payload={
                        "iconclass_path": [top, f"{top}5", f"{top}5F"],
                        "year_start": year,
                        "year_end": year + 10,
                    },
                )
            )
        store.client.upsert(physical, points=points, wait=True)
    return physical, vectors


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
    return Embedder(loaded, torch.device("cpu"))


def measure(
    size: int, queries: int, store: Store, embedder: Embedder, rng: np.random.Generator
) -> dict[str, object]:
    started = time.perf_counter()
    physical, vectors = build(store, size, rng)
    load_seconds = time.perf_counter() - started
    probes = rng.normal(size=(queries, DIM)).astype(np.float32)
    query_filter = Filters(iconclass=("35F",), years=(1500, 1550)).to_qdrant()
    timings: dict[str, list[float]] = {
        "numpy": [],
        "store": [],
        "filtered": [],
        "text_end_to_end": [],
    }
    for probe in probes:
        tick = time.perf_counter()
        np.argpartition(-(vectors @ probe), 10)[:10]
        timings["numpy"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        store.query(physical, probe.tolist(), query_filter=None, limit=10)
        timings["store"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        store.query(physical, probe.tolist(), query_filter=query_filter, limit=10)
        timings["filtered"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        vector = embedder.encode_texts(["a lion rampant holding a sword"])[0]
        store.query(physical, vector.tolist(), query_filter=None, limit=10)
        timings["text_end_to_end"].append(time.perf_counter() - tick)
    figures = {name: percentiles(values) for name, values in timings.items()}
    store_p50 = figures["store"]["p50_ms"]
    return {
        "points": size,
        "load_seconds": round(load_seconds, 1),
        **figures,
        "store_vs_numpy_p50": round(store_p50 / max(figures["numpy"]["p50_ms"], 1e-6), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    embedder = text_embedder()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Settings(data_dir=Path(folder), _env_file=None))
        for size in args.sizes:
            result = measure(size, args.queries, store, embedder, rng)
            print(result, flush=True)
            results.append(result)
        store.close()
    emit({"benchmark": "query", "backend": "qdrant-embedded-local", "results": results})


if __name__ == "__main__":
    main()
