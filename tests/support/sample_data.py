"""A generated collection: distinct images with catalogue metadata we control.

Each item has a known Iconclass notation, AAT id, date, place and position,
so filter tests can name exactly which ids must come back.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [
    (200, 30, 30),
    (30, 160, 40),
    (30, 60, 200),
    (220, 200, 40),
    (120, 40, 160),
    (30, 30, 30),
]
COLOUR_NAMES = ["red", "green", "blue", "yellow", "purple", "black"]
SHAPES = ["circle", "square", "triangle", "bar"]
ICONCLASS = [
    "25F23(LION)",
    "25F33(EAGLE)",
    "31A2748",
    "46C215(ANCHOR)",
    "11C13",
    "86(FAC ET SPERA)",
]
AAT = ["300033618", "aat:300041273", "300264849"]
PLACES = [("Leiden", 52.16, 4.49), ("Amsterdam", 52.37, 4.89), ("Antwerpen", 51.22, 4.40)]
DATES = [
    "1550/1600",
    "156X",
    "1620",
    "1650~",
    "ca. 1700",
    "-490 to -480",
    "16th century",
    "1600-1610",
]


@dataclass(frozen=True)
class SampleItem:
    id: str
    image: str
    caption: str
    iconclass: str
    aat: str
    date: str
    place: str
    lat: float
    lon: float
    technique: str


def draw(colour: tuple[int, int, int], shape: str, size: int = 96, variant: int = 0) -> Image.Image:
    """A shape on paper; `variant` tints the paper so no two sample images are equal."""
    image = Image.new("RGB", (size, size), (245 - 9 * variant, 240 - 4 * variant, 230))
    pen = ImageDraw.Draw(image)
    box = (size // 5, size // 5, size * 4 // 5, size * 4 // 5)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    elif shape == "triangle":
        pen.polygon(
            [(size // 2, size // 6), (size // 6, size * 5 // 6), (size * 5 // 6, size * 5 // 6)],
            fill=colour,
        )
    else:
        pen.rectangle((size // 8, size * 2 // 5, size * 7 // 8, size * 3 // 5), fill=colour)
    return image


def sample_items(count: int = 24) -> list[SampleItem]:
    items = []
    for index in range(count):
        colour = COLOUR_NAMES[index % len(COLOURS)]
        shape = SHAPES[index % len(SHAPES)]
        place, lat, lon = PLACES[index % len(PLACES)]
        items.append(
            SampleItem(
                id=f"item-{index:03d}",
                image=f"images/item-{index:03d}.{'png' if index % 3 == 0 else 'jpg'}",
                caption=f"a {colour} {shape}",
                iconclass=ICONCLASS[index % len(ICONCLASS)],
                aat=AAT[index % len(AAT)],
                date=DATES[index % len(DATES)],
                place=place,
                lat=lat,
                lon=lon,
                technique="woodcut" if index % 2 else "engraving",
            )
        )
    return items


def write_sample_collection(root: Path, count: int = 24, delimiter: str = ",") -> Path:
    """Images plus `manifest.csv` in `root`; returns the manifest path."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    items = sample_items(count)
    for index, item in enumerate(items):
        picture = draw(
            COLOURS[index % len(COLOURS)], SHAPES[index % len(SHAPES)], variant=index // 12
        )
        picture.save(root / item.image)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(
            [
                "id",
                "image",
                "caption",
                "iconclass",
                "aat",
                "date",
                "place",
                "lat",
                "lon",
                "technique",
            ]
        )
        for item in items:
            writer.writerow(
                [
                    item.id,
                    item.image,
                    item.caption,
                    item.iconclass,
                    item.aat,
                    item.date,
                    item.place,
                    item.lat,
                    item.lon,
                    item.technique,
                ]
            )
    return manifest
