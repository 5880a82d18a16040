"""Batched, L2-normalised text and image embeddings from a loaded model.

One code path for CPU and GPU: on CUDA the forward runs under bf16 autocast and
inputs are copied from pinned memory without blocking; vectors always come back
as float32 numpy arrays of unit length.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from services.errors import ConfigError
from services.models import LoadedModel, ModelSpec, load_model
from services.text_encoding import encode_text

Vectors = npt.NDArray[np.float32]


def pick_device(setting: str) -> torch.device:
    """`auto` means CUDA when present, else CPU; `cuda` without a GPU is an error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("VITRINE_DEVICE=cuda, but no CUDA GPU is visible. Use auto or cpu.")
    return torch.device(setting)


def normalise(vectors: torch.Tensor) -> Vectors:
    """Float32 numpy rows of unit length (a zero row stays zero)."""
    vectors = vectors.float()
    norms = vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (vectors / norms).cpu().numpy().astype(np.float32, copy=False)


class Embedder:
    """Encodes texts and images with one model; the query and ingest side share it."""

    def __init__(self, loaded: LoadedModel, device: torch.device, batch_size: int = 64) -> None:
        self.loaded = loaded
        self.device = device
        self.batch_size = batch_size

    @classmethod
    def from_spec(cls, spec: ModelSpec, device: torch.device, batch_size: int = 64) -> "Embedder":
        return cls(load_model(spec, device), device, batch_size)

    @property
    def version(self) -> str:
        return self.loaded.version

    @property
    def dim(self) -> int:
        return self.loaded.dim

    @property
    def image_size(self) -> int:
        return self.loaded.image_size

    @contextmanager
    def lanes(self) -> Iterator[int]:
        """How many batches to encode side by side in the block, each in its own thread.

        On a CPU: as many as torch has threads, each forward pass on one torch
        thread for the block (threads started in it keep that; the caller's
        setting comes back after). A forward pass split across cores waits at a
        barrier after each matrix product for its slowest thread, and beside
        image decoding threads one of them has often lost its core; whole
        batches side by side have no barrier, and the OS shares the cores
        between them and the decoders. On a GPU: one.
        """
        cores = torch.get_num_threads()
        if self.device.type != "cpu" or cores <= 1:
            yield 1
            return
        torch.set_num_threads(1)
        try:
            yield cores
        finally:
            torch.set_num_threads(cores)

    def _autocast(self) -> AbstractContextManager[object]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, in order. Any language the model's tokenizer takes."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.loaded.tokenizer(list(texts[start : start + self.batch_size]))
            with torch.inference_mode(), self._autocast():
                chunks.append(encode_text(self.loaded.model, tokens.to(self.device)))
        return normalise(torch.cat(chunks))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own transform for one PIL image (C, H, W float tensor)."""
        return self.loaded.preprocess(image)

    def encode_pixels(self, batch: torch.Tensor) -> Vectors:
        """Embed an already preprocessed (N, C, H, W) batch."""
        if batch.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode(), self._autocast():
            return normalise(self.loaded.model.encode_image(batch.to(self.device)))

    def encode_images(self, images: Iterable[Image.Image]) -> Vectors:
        """Embed PIL images in batches (query side and tests; ingest uses encode_pixels)."""
        tensors = [self.preprocess(image.convert("RGB")) for image in images]
        if not tensors:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self.encode_pixels(torch.stack(tensors[start : start + self.batch_size]))
            for start in range(0, len(tensors), self.batch_size)
        ]
        return np.concatenate(parts)
