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

import torch

_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [entry for entry in sys.path if str(Path(entry or ".").resolve()) != _HERE]
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), _HERE]


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
