"""Ingest throughput: our pipeline against a plain open_clip loop on the same JPEGs.

Reference (same process, same model, same files): PIL open + the model's
preprocess + encode_image in batches, single process. Ours: `ingest_collection`
into a fresh embedded store, which also hashes, writes payloads and upserts.
The model is ViT-B-32 with random weights (the same cost as trained ones; no
download needed), saved as a `local-dir:` folder as a fine-tuned version would be.

    .venv/bin/python benchmarks/ingest.py [--count 48] [--size 2000x3000] [--batch-size 16]
"""

import argparse
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--size", default="2000x3000", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="ViT-B-32")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        scans = make_scans(root / "scans", args.count, width, height)
        model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
        model.eval()
        config = open_clip.get_model_config(args.model)
        folder = save_model_folder(model, config, root / "model")
        files = sorted((root / "scans" / "images").glob("*.jpg"))

        plain_loop(files[: args.batch_size], model, preprocess, args.batch_size)  # warm-up
        reference = plain_loop(files, model, preprocess, args.batch_size)

        settings = Settings(
            data_dir=root / "data",
            model=f"local-dir:{folder}",
            device="auto",
            batch_size=args.batch_size,
            _env_file=None,
        )
        services = Services(settings)
        services.embedder()  # load the model outside the timed part, as the reference does
        rates = {}
        for name in ("images", "captioned"):
            started = time.perf_counter()
            summary = ingest_collection(services, name, scans / f"{name}.csv")
            rates[name] = summary.embedded / (time.perf_counter() - started)
        services.close()
        ours = rates["images"]
    emit(
        {
            "benchmark": "ingest",
            "model": args.model,
            "images": args.count,
            "size": args.size,
            "batch_size": args.batch_size,
            "plain_loop_images_per_s": round(reference, 2),
            "ours_images_per_s": round(ours, 2),
            "ratio": round(ours / reference, 2),
            "ours_with_captions_images_per_s": round(rates["captioned"], 2),
            "ratio_with_captions": round(rates["captioned"] / reference, 2),
            "embedded": summary.embedded,
            "failed": summary.failed,
        }
    )


if __name__ == "__main__":
    main()
