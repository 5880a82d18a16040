"""The per-epoch checkpoint of a training run, written so a crash never leaves half of one.

Holds the model, optimiser, schedule, random-number states, the epoch count,
the history and the early-stopping state; the best weights so far live in
their own file, named by epoch, so the checkpoint always names a whole file.
"""

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

CHECKPOINT = "checkpoint.pt"


def _atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """A state dict as safetensors, atomically."""
    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    _atomic(path, lambda name: save_file(tensors, name))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def rng_states() -> dict[str, Any]:
    """Every random-number state that training draws from."""
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    _atomic(run_dir / CHECKPOINT, lambda name: torch.save(state, name))


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The run's checkpoint (tensors on the CPU), or None when it has none yet."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    # Our own file: it holds RNG states and history, not only tensors.
    loaded: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return loaded
