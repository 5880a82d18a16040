"""Decoding image bytes safely: pixel caps, JPEG draft mode, EXIF rotation, RGB.

JPEG draft mode lets libjpeg decode a big scan at 1/2, 1/4 or 1/8 scale, keeping
at least twice the model's input size on the short side.

JPEG and PNG are opened through their plugin classes, which leaves PIL's global
decompression-bomb limit alone, so `decode` may run on them from many threads at
once (`decodes_in_thread`). Every other format goes through `Image.open` under a
temporarily changed global limit: one thread per process.
"""

import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from ingest.image_refs import ImageError

_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

# Signatures of the formats decoded in threads, and the plugin class that reads each.
_THREAD_SAFE: dict[bytes, Callable[[io.BytesIO], Image.Image]] = {
    b"\xff\xd8\xff": JpegImagePlugin.JpegImageFile,
    b"\x89PNG\r\n\x1a\n": PngImagePlugin.PngImageFile,
}


def decodes_in_thread(data: bytes) -> bool:
    """Whether `data` is a JPEG or PNG, which `decode` may handle in a thread.

    Two reasons make them safe outside a worker process: they touch no global
    state here (see the module docstring), and their decoders (libjpeg-turbo,
    zlib and PIL's PNG unfiltering) are the most used and most fuzzed ones PIL
    has, while its memory-safety advisories cluster in the long tail (TIFF,
    JPEG 2000, SGI, PCX, FLI, PSD, BLP). Those stay in processes, where a crash
    costs one image and not the run.
    """
    return _thread_safe_opener(data) is not None


def _thread_safe_opener(data: bytes) -> Callable[[io.BytesIO], Image.Image] | None:
    return next((open_ for magic, open_ in _THREAD_SAFE.items() if data.startswith(magic)), None)


def decode(data: bytes, *, target: int, max_pixels: int) -> Image.Image:
    """Decode image bytes into an upright RGB image, cheaply when it is huge.

    Args:
        data: the encoded image (any format PIL reads; the first frame of many).
        target: the model's input size; a JPEG is decoded at a reduced scale that
            keeps at least `2 * target` pixels on its short side.
        max_pixels: images whose header declares more pixels are refused before
            decoding; PIL's decompression-bomb check is held to the same limit.

    Raises:
        ImageError: "image too large: W×H pixels" or "corrupt image: ...".

    Note:
        For formats other than JPEG and PNG it changes PIL's global bomb limit
        while it runs: call it from one thread per process for those.
    """
    opener = _thread_safe_opener(data)
    try:
        if opener is not None:
            # The plugin class skips `Image.open`'s check against PIL's global
            # limit; ours follows, and JPEG and PNG have no frames to check later.
            return _develop(_capped(opener(io.BytesIO(data)), max_pixels), target)
        with _bomb_limit(None):  # the header only; checked below with a clearer message
            image = _capped(Image.open(io.BytesIO(data)), max_pixels)
        with _bomb_limit(max_pixels):  # frames and tiles may differ from the header
            return _develop(image, target)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"image too large: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageError("corrupt image: not in an image format we can read") from error
    except Exception as error:  # PIL's decoders raise many types on malformed data
        raise ImageError(f"corrupt image: {error or type(error).__name__}") from error


def _capped(image: Image.Image, max_pixels: int) -> Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}×{height} pixels (limit {max_pixels})")
    return image


def _develop(image: Image.Image, target: int) -> Image.Image:
    """Pixels at the reduced scale draft mode allows, upright, in RGB."""
    image.draft("RGB", (2 * target, 2 * target))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    return _to_rgb(image)


@contextmanager
def _bomb_limit(limit: int | None) -> Iterator[None]:
    """PIL's decompression-bomb limit set to `limit`, its warning raised as an error."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _HIGH_DEPTH_MODES:
        image = _to_8bit(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit or float grey to 0-255 (PIL's own conversion clips at 255)."""
    values = np.asarray(image, dtype=np.float64)
    top = values.max() if values.size else 0.0
    if top > 255:
        values = np.clip(values, 0, 65535) / 257
    elif image.mode == "F" and top <= 1.0:  # floating point scans in 0..1
        values = values * 255
    return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8))


def make_thumbnail(image: Image.Image, size: int) -> bytes:
    """A JPEG no larger than `size` on its long side, for result grids."""
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()
