"""Eight generated print designs, their transformed copies, and training copies.

`write_transformed_collection` writes the duplicates test's collection: each
original with six fixed transforms (rotation, crop, rescale, JPEG
re-compression, grey-scale, tone shift) and the pairs file that labels every
copy a duplicate of its original. `write_training_copies` writes what a tiny
model is fine-tuned on: the same designs under random transforms of the same
kinds, mostly stronger (other angles, margins, scales, qualities and tones,
drawn from a seed), each captioned with its design's name, so the model
learns to tell the designs apart and to ignore the transforms without ever
seeing one of the test's copies.
"""

import csv
import io
import math
import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

SIZE = 192
PAPER = (244, 238, 226)


def _rings(pen: ImageDraw.ImageDraw) -> None:
    for step, radius in enumerate(range(90, 5, -14)):
        fill = (40, 40, 90) if step % 2 == 0 else PAPER
        pen.ellipse((96 - radius, 96 - radius, 96 + radius, 96 + radius), fill=fill)


def _checker(pen: ImageDraw.ImageDraw) -> None:
    for y in range(0, SIZE, 32):
        for x in range(0, SIZE, 32):
            if (x // 32 + y // 32) % 2 == 0:
                pen.rectangle((x, y, x + 31, y + 31), fill=(30, 30, 30))


def _stripes(pen: ImageDraw.ImageDraw) -> None:
    for y in range(0, SIZE, 24):
        pen.rectangle((0, y, SIZE, y + 10), fill=(150, 30, 30))


def _diagonals(pen: ImageDraw.ImageDraw) -> None:
    for offset in range(-SIZE, SIZE, 28):
        pen.line((offset, 0, offset + SIZE, SIZE), fill=(20, 90, 40), width=8)


def _dots(pen: ImageDraw.ImageDraw) -> None:
    rng = random.Random(3)
    for _ in range(40):
        x, y, radius = rng.randrange(SIZE), rng.randrange(SIZE), rng.randrange(4, 14)
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(90, 60, 20))


def _star(pen: ImageDraw.ImageDraw) -> None:
    corners = []
    for step in range(10):
        angle = math.pi / 5 * step - math.pi / 2
        radius = 85 if step % 2 == 0 else 35
        corners.append((96 + radius * math.cos(angle), 96 + radius * math.sin(angle)))
    pen.polygon(corners, fill=(200, 150, 20), outline=(60, 40, 0))


def _frame(pen: ImageDraw.ImageDraw) -> None:
    pen.rectangle((10, 10, 181, 181), outline=(20, 20, 20), width=12)
    pen.rectangle((60, 60, 131, 131), fill=(20, 20, 120))


def _hatching(pen: ImageDraw.ImageDraw) -> None:
    for x in range(0, SIZE, 6):
        pen.line((x, 40, x, 150), fill=(60, 60, 60), width=2)
    pen.rectangle((0, 0, SIZE, 30), fill=(120, 20, 90))


DESIGNS = {
    "rings": _rings,
    "checker": _checker,
    "stripes": _stripes,
    "diagonals": _diagonals,
    "dots": _dots,
    "star": _star,
    "frame": _frame,
    "hatching": _hatching,
}


def _jpeg(image: Image.Image, quality: int = 25) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "rotated": lambda image: image.rotate(8, fillcolor=PAPER),
    "cropped": lambda image: image.crop((14, 14, SIZE - 14, SIZE - 14)).resize((SIZE, SIZE)),
    "rescaled": lambda image: image.resize((SIZE // 2, SIZE // 2), Image.Resampling.BILINEAR),
    "jpeg": _jpeg,
    "grey": lambda image: ImageOps.grayscale(image).convert("RGB"),
    "toned": lambda image: ImageEnhance.Brightness(
        ImageEnhance.Contrast(image).enhance(0.8)
    ).enhance(1.1),
}


def draw_design(name: str) -> Image.Image:
    """The original of design `name` on paper."""
    image = Image.new("RGB", (SIZE, SIZE), PAPER)
    DESIGNS[name](ImageDraw.Draw(image))
    return image


def caption_of(name: str) -> str:
    """The caption of a design and its copies, in the collection and in training."""
    return f"a print: {name}"


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(rows)


def write_transformed_collection(root: Path) -> tuple[Path, Path]:
    """Originals, their transformed copies, a manifest and a labelled-pairs file."""
    (root / "images").mkdir(parents=True)
    manifest_rows, pair_rows = [["id", "image", "caption"]], [["id_a", "id_b", "label"]]
    for name in DESIGNS:
        original = draw_design(name)
        variants = {name: original} | {
            f"{name}-{how}": transform(original) for how, transform in TRANSFORMS.items()
        }
        for rid, image in variants.items():
            image.save(root / "images" / f"{rid}.png")
            manifest_rows.append([rid, f"images/{rid}.png", caption_of(name)])
            if rid != name:
                pair_rows.append([name, rid, "1"])
    _write_rows(root / "manifest.csv", manifest_rows)
    _write_rows(root / "pairs.csv", pair_rows)
    return root / "manifest.csv", root / "pairs.csv"


def random_copy(image: Image.Image, rng: random.Random) -> Image.Image:
    """`image` rotated and cropped, and by a coin toss each rescaled, greyed, toned, re-compressed.

    Every copy is turned by a random angle (up to 20 degrees either way), so
    none is one of the test's fixed copies.
    """
    image = image.rotate(rng.uniform(-20, 20), fillcolor=PAPER)
    margin = rng.randint(0, 40)
    image = image.crop((margin, margin, SIZE - margin, SIZE - margin)).resize((SIZE, SIZE))
    if rng.random() < 0.5:
        side = int(SIZE * rng.uniform(0.25, 0.9))
        image = image.resize((side, side), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        image = ImageOps.grayscale(image).convert("RGB")
    if rng.random() < 0.5:
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.4))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    if rng.random() < 0.5:
        image = _jpeg(image, rng.randint(10, 60))
    return image


def write_training_copies(root: Path, copies: int, seed: int = 0) -> Path:
    """`copies` random copies of each design, captioned with its name; returns the manifest."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True)
    rows = [["id", "image", "caption"]]
    for name in DESIGNS:
        original = draw_design(name)
        for number in range(copies):
            rid = f"{name}-train-{number:02d}"
            random_copy(original, rng).save(root / "images" / f"{rid}.png")
            rows.append([rid, f"images/{rid}.png", caption_of(name)])
    _write_rows(root / "manifest.csv", rows)
    return root / "manifest.csv"
