"""Small line charts as PNG, drawn with PIL (no plotting library needed)."""

from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 640, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 36, 48
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]], title: str, x_label: str, path: Path
) -> Path:
    """Draw each named series of (x, y) points; returns `path`."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    pen = ImageDraw.Draw(image)
    points = [point for values in series.values() for point in values]
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    pen.text((left, 10), title, fill="black")
    pen.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    pen.text(((left + right) // 2 - 3 * len(x_label), HEIGHT - 20), x_label, fill="black")
    if points:
        xs = [x for x, _ in points]
        ys = [y for _, y in points]
        x_low, x_high = float(min(xs)), float(max(xs) if max(xs) > min(xs) else min(xs) + 1)
        y_low, y_high = float(min(ys)), float(max(ys) if max(ys) > min(ys) else min(ys) + 1)

        def place(x: float, y: float) -> tuple[float, float]:
            return (
                left + (x - x_low) / (x_high - x_low) * (right - left),
                bottom - (y - y_low) / (y_high - y_low) * (bottom - top),
            )

        for value, level in ((y_low, bottom), (y_high, top)):
            pen.text((4, level - 6), f"{value:.3g}", fill="black")
        pen.text((left, bottom + 4), f"{x_low:g}", fill="black")
        pen.text((right - 24, bottom + 4), f"{x_high:g}", fill="black")
        for index, (name, values) in enumerate(series.items()):
            colour = PALETTE[index % len(PALETTE)]
            placed = [place(x, y) for x, y in values]
            if len(placed) > 1:
                pen.line(placed, fill=colour, width=2)
            for x, y in placed:
                pen.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
            pen.text((left + 8, top + 6 + 14 * index), name, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
