"""The fast ingest path gives the vectors the plain open_clip path gives.

Plain path: `model.encode_image(preprocess(Image.open(p).convert("RGB")))`,
L2-normalised. Ours: JPEG draft-mode decode, the transform's PIL steps and
numpy normalisation in decoding threads, other formats in worker processes.
The images are opaque and carry no EXIF rotation, the two places where ours
differs from the plain path on purpose (transparency on white, upright).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from ingest.image_decode import decode
from ingest.runner import ingest_collection
from services.settings import Settings
from services.store import IMAGE_VECTOR, point_id
from services.wiring import Services

COLLECTION = "fast"


def photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients, blocks and grain, as a photographed print has."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack(
        [cols * 255 / width, rows * 255 / height, ((cols // 97 + rows // 89) % 2) * 200.0], -1
    )
    grain = np.random.default_rng(seed).normal(0, 10, base.shape)
    return Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))


def write_images(folder: Path) -> dict[str, Path]:
    """Big JPEGs (draft-decoded), a small one, greyscale, PNGs (RGB, RGBA, grey), a TIFF."""
    folder.mkdir(parents=True)
    images: dict[str, tuple[Image.Image, str]] = {
        "big-landscape": (photo(1600, 1200, 1), "jpg"),
        "big-portrait": (photo(1200, 1600, 2), "jpg"),
        "small": (photo(300, 200, 3), "jpg"),
        "grey-jpeg": (photo(900, 700, 4).convert("L"), "jpg"),
        "png": (photo(400, 300, 5), "png"),
        "rgba-png": (photo(500, 380, 6).convert("RGBA"), "png"),
        "grey-png": (photo(260, 340, 7).convert("L"), "png"),
        "tiff": (photo(640, 480, 8), "tif"),
    }
    paths = {}
    for name, (image, suffix) in images.items():
        paths[name] = folder / f"{name}.{suffix}"
        image.save(paths[name], **({"quality": 90} if suffix == "jpg" else {}))
    return paths


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    paths = write_images(tmp_path / "catalogue" / "images")
    manifest = tmp_path / "catalogue" / "manifest.csv"
    rows = [f"{name},images/{path.name}" for name, path in paths.items()]
    manifest.write_text("id,image\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return paths


@pytest.fixture(params=[1, 2], ids=["inline", "threads-and-processes"])
def services(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Services]:
    wired = Services(settings.with_overrides(decode_workers=request.param))
    yield wired
    wired.close()


def plain_vectors(model_dir: Path, paths: dict[str, Path]) -> dict[str, np.ndarray]:
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{model_dir}")
    model.eval()
    vectors = {}
    with torch.inference_mode():
        for name, path in paths.items():
            pixels = cast(torch.Tensor, preprocess(Image.open(path).convert("RGB")))
            vector = model.encode_image(pixels.unsqueeze(0))[0]
            vectors[name] = (vector / vector.norm()).numpy()
    return vectors


def stored_vectors(services: Services, names: list[str]) -> dict[str, np.ndarray]:
    physical = services.store.info(COLLECTION).physical
    ids = {point_id(COLLECTION, name): name for name in names}
    points = services.store.fetch(physical, list(ids), with_vectors=True)
    return {
        ids[str(point.id)]: np.asarray(cast(dict[str, Any], point.vector)[IMAGE_VECTOR])
        for point in points
    }


def test_stored_image_vectors_match_the_plain_open_clip_path(
    services: Services, images: dict[str, Path], tiny_model_dir: Path
) -> None:
    target = services.embedder().image_size
    for name in ("big-landscape", "big-portrait"):  # decoded at 1/8 scale by libjpeg
        data = images[name].read_bytes()
        assert max(decode(data, target=target, max_pixels=10**8).size) == 1600 // 8
    manifest = next(iter(images.values())).parents[1] / "manifest.csv"
    summary = ingest_collection(services, COLLECTION, manifest)
    assert (summary.embedded, summary.failed) == (len(images), 0), summary
    expected = plain_vectors(tiny_model_dir, images)
    stored = stored_vectors(services, list(images))
    assert sorted(stored) == sorted(expected)
    cosines = {name: float(np.dot(stored[name], expected[name])) for name in images}
    print("cosine to the plain path:", {name: round(c, 6) for name, c in cosines.items()})
    assert all(cosine >= 0.999 for cosine in cosines.values()), cosines


def test_lanes_run_torch_on_one_thread_and_put_the_setting_back(settings: Settings) -> None:
    services = Services(settings)
    embedder = services.embedder()
    services.close()
    before = torch.get_num_threads()
    with embedder.lanes() as lanes:
        assert lanes == before
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
