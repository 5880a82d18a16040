"""A learnable image-caption set: coloured shapes at places, captioned in words.

Every combination of colour, shape and place appears once, so every caption is
unique and a model that learns the three attributes can tell all items apart;
the split sends unseen combinations to validation and test, so a model only
scores well there if it learned the attributes, not the items.
"""

import csv
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (200, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 200),
    "yellow": (220, 200, 40),
    "purple": (120, 40, 160),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "cross")
PLACES = (
    "at the top left",
    "at the top",
    "at the top right",
    "on the left",
    "in the centre",
    "on the right",
    "at the bottom left",
    "at the bottom",
    "at the bottom right",
)
SIZE = 64


def draw(colour: str, shape: str, place: int, rng: random.Random) -> Image.Image:
    """One shape on tinted paper, jittered a little in place and size."""
    paper = (240 + rng.randint(-12, 12), 236 + rng.randint(-12, 12), 224 + rng.randint(-8, 8))
    image = Image.new("RGB", (SIZE, SIZE), paper)
    pen = ImageDraw.Draw(image)
    x = 12 + 20 * (place % 3) + rng.randint(-2, 2)
    y = 12 + 20 * (place // 3) + rng.randint(-2, 2)
    r = 8 + rng.randint(-1, 2)
    fill = COLOURS[colour]
    if shape == "circle":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        pen.rectangle((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "triangle":
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    else:
        pen.rectangle((x - r, y - 3, x + r, y + 3), fill=fill)
        pen.rectangle((x - 3, y - r, x + 3, y + r), fill=fill)
    return image


def write_synthetic_pairs(root: Path, seed: int = 0) -> Path:
    """216 PNGs and `pairs.csv` (id, image, caption, shape, colour, sheet); returns the manifest.

    `sheet` groups items four by four, standing in for a book or a site.
    """
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for colour in COLOURS:
        for shape in SHAPES:
            for place, where in enumerate(PLACES):
                item = f"{colour}-{shape}-{place}"
                draw(colour, shape, place, rng).save(root / "images" / f"{item}.png")
                rows.append(
                    [
                        item,
                        f"images/{item}.png",
                        f"a {colour} {shape} {where}",
                        shape,
                        colour,
                        f"sheet-{len(rows) // 4}",
                    ]
                )
    manifest = root / "pairs.csv"
    with manifest.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "image", "caption", "shape", "colour", "sheet"])
        writer.writerows(rows)
    return manifest
