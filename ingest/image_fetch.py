"""Reading image bytes: a file inside the manifest's folder, or an http(s) URL.

Files have their size checked before reading; URLs are streamed under a size cap
and one deadline, with connection faults, timeouts, HTTP 5xx and 429 retried
with exponential back-off (tenacity), other HTTP errors not.
"""

import hashlib
import io
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import tenacity

from ingest.image_refs import ImageError, ImageRef

USER_AGENT = "vitrine/0.1 (image ingest)"
_CHUNK = 1 << 16
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


@dataclass(frozen=True)
class ImageLimits:
    """Caps and network behaviour for reading images (see `Settings`)."""

    max_bytes: int
    max_pixels: int
    timeout: float
    attempts: int = 3
    backoff: float = 0.5


class _TransientFault(ImageError):
    """A fault worth another try: connection refused or reset, timeout, 5xx, 429."""


def read_bytes(
    ref: ImageRef, *, max_bytes: int, timeout: float, attempts: int = 3, backoff: float = 0.5
) -> bytes:
    """The bytes of an image file or URL, at most `max_bytes` of them.

    Args:
        ref: a checked reference (`resolve_ref`).
        max_bytes: larger files and downloads are refused without reading them whole.
        timeout: seconds for one download attempt, from connecting to the last byte.
        attempts: tries for a URL before giving up on transient faults.
        backoff: first wait between tries in seconds; it doubles each time.

    Raises:
        ImageError: missing, empty or too large file; HTTP 4xx; a URL still
            unreachable after `attempts` tries ("unreachable URL ...: reason").
    """
    if ref.kind == "file":
        assert ref.path is not None
        with open_image_file(ref.path, max_bytes) as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:  # it grew since we looked at its size
            raise ImageError(f"file too large: over {max_bytes} bytes: {ref.path}")
        return data
    assert ref.url is not None
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_TransientFault),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential_jitter(initial=backoff, max=60 * backoff, jitter=backoff),
        reraise=True,
    )
    try:
        return retrying(_fetch, ref.url, max_bytes, timeout)
    except _TransientFault as fault:
        raise ImageError(f"unreachable URL {ref.url}: {fault.reason}") from fault


@contextmanager
def open_image_file(path: Path, max_bytes: int) -> Iterator[io.BufferedReader]:
    try:
        handle = path.open("rb")
    except FileNotFoundError as error:
        raise ImageError(f"file not found: {path}") from error
    except IsADirectoryError as error:
        raise ImageError(f"not a file: {path}") from error
    except OSError as error:
        raise ImageError(f"cannot read {path}: {error.strerror}") from error
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise ImageError(f"file too large: {size} bytes (limit {max_bytes}): {path}")
        if size == 0:
            raise ImageError(f"empty file: {path}")
        yield handle


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    try:
        with requests.get(
            url, stream=True, timeout=timeout, headers={"User-Agent": USER_AGENT}
        ) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise _TransientFault(f"HTTP {status}")
            if not 200 <= status < 300:
                raise ImageError(f"HTTP {status} for {url}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImageError(f"file too large: {declared} bytes (limit {max_bytes}): {url}")
            parts: list[bytes] = []
            size = 0
            for part in response.iter_content(_CHUNK):
                size += len(part)
                if size > max_bytes:
                    raise ImageError(f"file too large: over {max_bytes} bytes: {url}")
                if time.monotonic() > deadline:
                    raise _TransientFault(f"timed out after {timeout:g} s")
                parts.append(part)
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    ) as error:
        raise _TransientFault(_short_reason(error)) from error
    except requests.RequestException as error:  # invalid URL, redirect loop, bad scheme
        raise ImageError(f"unreachable URL {url}: {_short_reason(error)}") from error
    if not size:
        raise ImageError(f"empty file: {url}")
    return b"".join(parts)


def _short_reason(error: requests.RequestException) -> str:
    """`[Errno 111] Connection refused` out of requests' nested messages."""
    if isinstance(error, requests.Timeout):
        return "timed out"
    match = _ERRNO.search(str(error))
    return match.group(0).strip() if match else type(error).__name__


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of `data`: the content hash stored in every payload."""
    return hashlib.sha256(data).hexdigest()
