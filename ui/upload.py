"""Decode an uploaded query image safely: caps on bytes and pixels, RGB out.

A query image only needs to be as large as the model's input, so it is
downscaled on decode (JPEG draft mode makes that cheap for big photographs).
"""

import io

from PIL import Image, ImageOps

from services.errors import VitrineError

UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "tif", "tiff")
FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "MPO"}
QUERY_SIDE = 1024
MEGABYTE = 1024 * 1024


class UploadError(VitrineError):
    """An uploaded file cannot be used as a query image; the message says why."""


def decode_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """An RGB image of at most QUERY_SIDE pixels a side, from the uploaded bytes.

    Raises:
        UploadError: the file is empty, too large, not an image in a format we
            take, damaged, or has more pixels than allowed.
    """
    if not data:
        raise UploadError("The file is empty.")
    if len(data) > max_bytes:
        raise UploadError(
            f"The file is {len(data) / MEGABYTE:.1f} MB; images up to "
            f"{max_bytes / MEGABYTE:.0f} MB are accepted."
        )
    try:
        return _decode(data, max_pixels)
    except UploadError:
        raise
    except Image.DecompressionBombError as error:
        raise UploadError(f"The image has too many pixels to open safely ({error}).") from error
    # A damaged file can make any decoder raise almost anything (OSError,
    # SyntaxError, struct.error, IndexError...): all of them mean "not usable".
    except Exception as error:
        raise UploadError(
            f"This file could not be read as an image ({error or type(error).__name__}). "
            "Use a JPEG, PNG, WebP or TIFF file."
        ) from error


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    with Image.open(io.BytesIO(data)) as probe:
        if probe.format not in FORMATS:
            raise UploadError(
                f"{probe.format or 'This'} images are not accepted: use JPEG, PNG, WebP or TIFF."
            )
        width, height = probe.size
        if width * height > max_pixels:
            raise UploadError(
                f"The image has {width} x {height} pixels; at most {max_pixels:,} are accepted."
            )
        probe.verify()
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (QUERY_SIDE, QUERY_SIDE))
        upright = ImageOps.exif_transpose(image)
        rgb = upright.convert("RGB")
    rgb.thumbnail((QUERY_SIDE, QUERY_SIDE))
    return rgb
