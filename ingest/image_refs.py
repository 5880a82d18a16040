"""Where a record's image lives: a file inside the manifest's folder, or an http(s) URL.

A manifest is data from outside, so its `image` column is checked before anything
is read: URLs must be http or https, and paths, once `..` and symlinks are
resolved, must stay inside the folder that holds the manifest.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from services.errors import VitrineError

URL_SCHEMES = ("http", "https")

# A scheme is at least two characters, so a Windows drive (`C:\scan.tif`) is a path.
# A relative file name with a colon before any slash (`a:b.jpg`) reads as a URL with
# an unsupported scheme; write it as `./a:b.jpg`.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class ImageError(VitrineError):
    """One image cannot be used; `reason` says why in a few words.

    An ingest skips the image, counts it and writes the reason to its error report.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageRef:
    """A checked image reference: `path` for kind `file`, `url` for kind `url`."""

    kind: Literal["file", "url"]
    path: Path | None = None
    url: str | None = None

    @property
    def location(self) -> str:
        """The path or URL, as a person would read it in a message."""
        return str(self.url if self.kind == "url" else self.path)


def resolve_ref(ref: str, root: Path) -> ImageRef:
    """Check a manifest's image reference and say where the image is.

    Args:
        ref: the `image` value of a record: a path relative to `root`, an
            absolute path inside `root`, or an http(s) URL.
        root: the folder that holds the manifest.

    Returns:
        An `ImageRef`; file paths come back absolute with symlinks resolved.

    Raises:
        ImageError: an empty reference, a URL with another scheme or no host, or
            a path that leads outside `root`.

    Example:
        >>> resolve_ref("https://example.org/a.jpg", Path(".")).kind
        'url'
    """
    ref = ref.strip()
    if not ref:
        raise ImageError("empty image reference")
    scheme = _SCHEME.match(ref)
    if scheme:
        return _url_ref(ref, scheme.group(1).lower())
    return _file_ref(ref, root)


def _url_ref(ref: str, scheme: str) -> ImageRef:
    if scheme not in URL_SCHEMES:
        raise ImageError(f"unsupported URL scheme {scheme}: (only http and https)")
    try:
        host = urlsplit(ref).hostname
    except ValueError as error:
        raise ImageError(f"invalid URL {ref}: {error}") from error
    if not host:
        raise ImageError(f"invalid URL {ref}: no host")
    return ImageRef(kind="url", url=ref)


def _file_ref(ref: str, root: Path) -> ImageRef:
    if "\x00" in ref:
        raise ImageError("invalid path: it contains a NUL character")
    base = root.resolve()
    try:
        resolved = (base / ref).resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise ImageError(f"invalid path {ref}: {error}") from error
    if not resolved.is_relative_to(base):
        raise ImageError(f"path escapes the manifest folder: {ref}")
    return ImageRef(kind="file", path=resolved)
