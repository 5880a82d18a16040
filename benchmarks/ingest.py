"""Ingest throughput: our pipeline against a plain open_clip loop on the same JPEGs.

Reference (same process, same model, same files): PIL open + the model's
preprocess + encode_image in batches, single process. Ours: `ingest_collection`
into a fresh embedded store, which also hashes, writes payloads, thumbnails and
upserts. The model is ViT-B-32 with random weights (the same cost as trained
ones; no download needed), saved as a `local-dir:` folder as a fine-tuned
version would be. Each size gets its own files and collection; one line per
size, then every figure as one JSON object on the last line.

Sizes: ImageNet-like photos (500x375), scans (2000x3000), archival scans
(4000x6000). Targets: ours at least 1.5x the plain loop at 2000x3000 and 2x at
4000x6000.

    .venv/bin/python benchmarks/ingest.py [--count 48] [--sizes 500x375,2000x3000,4000x6000]
        [--batch-size 16] [--repeat 1]
"""

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from common import emit
from PIL import Image

from ingest.runner import ingest_collection
from services.model_folder import save_model_folder
from services.settings import Settings
from services.wiring import Services


def make_scans(folder: Path, count: int, width: int, height: int) -> Path:
    """Noisy, textured JPEGs (quality 90) that compress like real scans, plus two
    manifests: `images.csv` (no captions: the same work as the plain loop) and
    `captioned.csv` (a caption per row, which ingest also embeds)."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    base = rng.integers(0, 255, size=(height // 8, width // 8, 3), dtype=np.uint8)
    lines = ["id,image,caption"]
    bare = ["id,image"]
    for index in range(count):
        tile = np.roll(base, index * 7, axis=1)
        picture = Image.fromarray(tile).resize((width, height), Image.Resampling.BILINEAR)
        noise = rng.integers(0, 24, size=(height, width, 1), dtype=np.uint8)
        picture = Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8))
        picture.save(folder / "images" / f"scan-{index:04d}.jpg", quality=90)
        lines.append(f"scan-{index:04d},images/scan-{index:04d}.jpg,scan number {index}")
        bare.append(f"scan-{index:04d},images/scan-{index:04d}.jpg")
    (folder / "captioned.csv").write_text("\n".join(lines) + "\n")
    (folder / "images.csv").write_text("\n".join(bare) + "\n")
    return folder


def plain_loop(files: list[Path], model: torch.nn.Module, preprocess, batch_size: int) -> float:  # type: ignore[no-untyped-def]
    """Images per second of the textbook loop."""
    started = time.perf_counter()
    for start in range(0, len(files), batch_size):
        batch = torch.stack(
            [
                preprocess(Image.open(path).convert("RGB"))
                for path in files[start : start + batch_size]
            ]
        )
        with torch.inference_mode():
            model.encode_image(batch)
    return len(files) / (time.perf_counter() - started)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`500x375,2000x3000` as [(500, 375), (2000, 3000)]."""
    return [
        (int(width), int(height))
        for width, height in (part.strip().split("x") for part in text.split(",") if part.strip())
    ]


def ingest_rate(services: Services, collection: str, manifest: Path, count: int) -> float:
    """Images per second of `ingest_collection` into a new collection."""
    started = time.perf_counter()
    summary = ingest_collection(services, collection, manifest)
    rate = summary.embedded / (time.perf_counter() - started)
    if summary.embedded != count:
        raise SystemExit(f"{collection}: embedded {summary.embedded} of {count}")
    return rate


def measure_size(
    root: Path,
    services: Services,
    model: torch.nn.Module,
    preprocess,  # type: ignore[no-untyped-def]
    size: tuple[int, int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The plain loop and our ingest (without, then with captions) on one size.

    With `--repeat N` the three are measured N times, taking turns, and the best
    rate of each counts: other processes on the machine only ever slow a run.
    """
    width, height = size
    name = f"{width}x{height}"
    scans = make_scans(root / name, args.count, width, height)
    files = sorted((scans / "images").glob("*.jpg"))
    plain_loop(files[: args.batch_size], model, preprocess, args.batch_size)  # warm-up
    rates: dict[str, float] = {"plain": 0.0, "images": 0.0, "captioned": 0.0}
    for turn in range(args.repeat):
        rates["plain"] = max(rates["plain"], plain_loop(files, model, preprocess, args.batch_size))
        for manifest in ("images", "captioned"):
            collection = f"{manifest}-{name}-{turn}"
            rate = ingest_rate(services, collection, scans / f"{manifest}.csv", args.count)
            rates[manifest] = max(rates[manifest], rate)
    figures = {
        "plain_loop_images_per_s": round(rates["plain"], 2),
        "ours_images_per_s": round(rates["images"], 2),
        "ratio": round(rates["images"] / rates["plain"], 2),
        "ours_with_captions_images_per_s": round(rates["captioned"], 2),
        "ratio_with_captions": round(rates["captioned"] / rates["plain"], 2),
    }
    print(
        f"{name}: plain loop {figures['plain_loop_images_per_s']} images/s, "
        f"ours {figures['ours_images_per_s']} (x{figures['ratio']}), "
        f"with captions {figures['ours_with_captions_images_per_s']} "
        f"(x{figures['ratio_with_captions']})",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48, help="images per size")
    parser.add_argument(
        "--sizes",
        "--size",
        default="500x375,2000x3000,4000x6000",
        help="comma-separated WIDTHxHEIGHT of the generated JPEGs",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure each N times, taking turns; keep the best"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
        model.eval()
        config = open_clip.get_model_config(args.model)
        folder = save_model_folder(model, config, root / "model")
        settings = Settings(
            data_dir=root / "data",
            model=f"local-dir:{folder}",
            device="auto",
            batch_size=args.batch_size,
            _env_file=None,
        )
        services = Services(settings)
        services.embedder()  # load the model outside the timed part, as the reference does
        try:
            sizes = {
                f"{width}x{height}": measure_size(
                    root, services, model, preprocess, (width, height), args
                )
                for width, height in parse_sizes(args.sizes)
            }
        finally:
            services.close()
    emit(
        {
            "benchmark": "ingest",
            "model": args.model,
            "images": args.count,
            "batch_size": args.batch_size,
            "repeat": args.repeat,
            "sizes": sizes,
        }
    )


if __name__ == "__main__":
    main()
