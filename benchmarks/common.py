"""What every benchmark shares: timing summaries and the one-JSON-line output.

Benchmarks are run as files (`python benchmarks/ingest.py`), which puts this
folder first on sys.path, where `ingest.py` or `finetune.py` would shadow the
packages of the same name. Importing this module first puts the repository
root ahead of this folder.
"""

import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [entry for entry in sys.path if str(Path(entry or ".").resolve()) != _HERE]
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), _HERE]


EMBEDDING_DIM = 512
LATENT_DIM = 64


def embedding_like(rng: np.random.Generator, count: int) -> np.ndarray:
    """Unit 512-d vectors (as ViT-B-32's) with a 64-dimensional structure plus noise,
    as embeddings of real images have: their effective rank is far below 512, and
    random directions in 512-d would make every neighbour equally far."""
    basis = np.random.default_rng(1).normal(size=(LATENT_DIM, EMBEDDING_DIM)).astype(np.float32)
    structure = rng.normal(size=(count, LATENT_DIM)).astype(np.float32) @ basis
    vectors = structure + 2.0 * rng.normal(size=(count, EMBEDDING_DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def machine() -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "cpus": torch.get_num_threads(), "gpu": gpu}


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as one JSON object on the last line."""
    print(json.dumps({**figures, "machine": machine()}))
