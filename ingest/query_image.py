"""Example images given to a search: the same safe decoding as ingest.

The user's own file (CLI) or upload (UI) gets the size caps, EXIF rotation and
RGB conversion that catalogue images get, and a clear `ImageError` when it is
not an image we can read.
"""

from pathlib import Path

from PIL import Image

from ingest.image_decode import decode
from ingest.image_fetch import read_bytes
from ingest.image_refs import ImageError, ImageRef
from services.settings import Settings

# Decode at least this size; the model's transform scales it down further.
QUERY_DECODE_SIZE = 512


def decode_query_image(data: bytes, settings: Settings) -> Image.Image:
    """An uploaded image's bytes as an upright RGB image."""
    if len(data) > settings.max_image_bytes:
        raise ImageError(f"image too large: over {settings.max_image_bytes} bytes")
    if not data:
        raise ImageError("empty file")
    return decode(data, target=QUERY_DECODE_SIZE, max_pixels=settings.max_image_pixels)


def open_query_image(path: Path, settings: Settings) -> Image.Image:
    """The image file at `path` (any folder: it is the user's own choice)."""
    ref = ImageRef(kind="file", path=path.expanduser().resolve())
    data = read_bytes(ref, max_bytes=settings.max_image_bytes, timeout=settings.http_timeout)
    return decode_query_image(data, settings)
