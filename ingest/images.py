"""Reading, checking, decoding and preprocessing images for ingest, in parallel.

Stages, each usable alone:

- `read_bytes`: a file (size checked before reading) or an http(s) URL (streamed
  under a size cap and a deadline; connection faults, timeouts, HTTP 5xx and 429
  retried with exponential back-off, other HTTP errors not).
- `decode`: PIL with a pixel cap, JPEG draft mode (libjpeg decodes a big scan at
  1/2, 1/4 or 1/8 scale, keeping at least twice the model's input size on the
  short side), EXIF rotation, and any mode to RGB (transparency on white).
- `ImageLoader.load`: read + hash + decode + the model's own preprocess in worker
  processes, so the main process only stacks tensors and runs the model.

Worker processes are started with `spawn`: the parent may hold CUDA, torch's
thread pools or gRPC threads, none of which survive `fork` reliably. Starting a
worker imports torch and the transform's package (a few seconds, once per
loader). Tensors come back as numpy arrays through the pool's pipe rather than
torch shared memory, which small `/dev/shm` mounts (Docker's 64 MB) cannot hold.

Hash first, decode later: `ImageLoader.hash_only` reads and hashes in threads so a
caller can skip unchanged images without decoding them. Files are simply read
again by `load` (the page cache makes that cheap). URLs are fetched once: the
hash step spools their bytes into a temporary folder owned by the loader, `load`
reads the spooled copy and deletes it, and `close` removes what is left (the
images the caller skipped). Hash and load in chunks to keep that folder small.
"""

import hashlib
import io
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import requests
import tenacity
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ingest.image_refs import ImageError, ImageRef
from services.settings import Settings

Preprocess = Callable[[Image.Image], torch.Tensor]
Item = tuple[int, ImageRef]  # the caller's index (a row number) and where the image is

USER_AGENT = "vitrine/0.1 (image ingest)"
_CHUNK = 1 << 16
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


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
        with _open_file(ref.path, max_bytes) as handle:
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
def _open_file(path: Path, max_bytes: int) -> Iterator[io.BufferedReader]:
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
        Changes PIL's global bomb limit while it runs: call it from one thread per
        process (the loader's workers do).
    """
    try:
        with _bomb_limit(None):  # the header only; checked below with a clearer message
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"image too large: {width}×{height} pixels (limit {max_pixels})")
        with _bomb_limit(max_pixels):  # frames and tiles may differ from the header
            image.draft("RGB", (2 * target, 2 * target))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"image too large: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageError("corrupt image: not in an image format we can read") from error
    except Exception as error:  # PIL's decoders raise many types on malformed data
        raise ImageError(f"corrupt image: {error or type(error).__name__}") from error


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


@dataclass(frozen=True)
class DecodedImage:
    """One loaded image: `pixels` ready for the model, or `error` saying why not.

    `pixels` is what the loader's preprocess returned, dtype kept: a float (C, H, W)
    tensor from a model's transform, uint8 from a transform that only shrinks.
    `sha256` is the hash of the bytes read; it is set whenever they could be read,
    even if they did not decode.
    """

    index: int
    sha256: str | None
    pixels: torch.Tensor | None = None
    error: str | None = None
    thumbnail: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.pixels is not None


@dataclass(frozen=True)
class _Outcome:
    """What a worker sends back; pixels as numpy so they travel by plain pickle."""

    index: int
    sha256: str | None
    pixels: npt.NDArray[Any] | None
    error: str | None
    thumbnail: bytes | None = None


@dataclass(frozen=True)
class _DecodeJob:
    preprocess: Preprocess
    target: int
    limits: ImageLimits
    thumbnail_size: int | None = None


def _read(ref: ImageRef, limits: ImageLimits) -> bytes:
    return read_bytes(
        ref,
        max_bytes=limits.max_bytes,
        timeout=limits.timeout,
        attempts=limits.attempts,
        backoff=limits.backoff,
    )


def _load_one(job: _DecodeJob, index: int, ref: ImageRef) -> _Outcome:
    """Read, hash, decode and preprocess one image; every failure becomes an outcome."""
    try:
        data = _read(ref, job.limits)
    except ImageError as error:
        return _Outcome(index, None, None, error.reason)
    digest = sha256_hex(data)
    try:
        image = decode(data, target=job.target, max_pixels=job.limits.max_pixels)
        del data
        pixels = job.preprocess(image)
    except ImageError as error:
        return _Outcome(index, digest, None, error.reason)
    except Exception as error:  # a transform failing on an odd image must not stop a run
        return _Outcome(index, digest, None, f"cannot preprocess image: {error}")
    thumbnail = make_thumbnail(image, job.thumbnail_size) if job.thumbnail_size else None
    return _Outcome(index, digest, pixels.contiguous().numpy(), None, thumbnail)


def make_thumbnail(image: Image.Image, size: int) -> bytes:
    """A JPEG no larger than `size` on its long side, for result grids."""
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group; only the parent handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


class ImageLoader:
    """Loads images in parallel, ready for `Embedder.encode_pixels`.

    Use it as a context manager (or call `close`): it owns a process pool, kept
    across `load` calls, and a spool folder for downloaded URLs.

    Args:
        preprocess: the model's transform, or any picklable callable from an RGB
            image to a tensor (it is sent to the workers).
        target: the model's input size (decoding keeps twice that).
        limits: size caps and network behaviour.
        workers: processes; 0 means one per CPU core, 1 runs inline (no pool).
        in_flight: most images submitted and not yet consumed (bounds memory);
            default four per worker.
        io_threads: threads for `hash_only`.
        spool_parent: where the URL spool folder is made; default the system temp.
        stop_grace: after Ctrl-C, seconds the running tasks get to finish before
            the workers are terminated.
        thumbnail_size: when set, each loaded image also comes with a JPEG
            thumbnail of at most this size, made from the decoded image.

    Example:
        >>> with ImageLoader(preprocess, target=224, limits=limits) as loader:  # doctest: +SKIP
        ...     for item in loader.load(enumerate(refs)):
        ...         ...
    """

    def __init__(
        self,
        preprocess: Preprocess,
        *,
        target: int,
        limits: ImageLimits,
        workers: int = 0,
        in_flight: int | None = None,
        io_threads: int = 8,
        spool_parent: Path | None = None,
        stop_grace: float = 5.0,
        thumbnail_size: int | None = None,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.in_flight = in_flight or 4 * self.workers
        self.io_threads = io_threads
        self._job = _DecodeJob(preprocess, target, limits, thumbnail_size)
        self._spool_parent = spool_parent
        self.stop_grace = stop_grace
        self._spool: Path | None = None
        self._pool: ProcessPoolExecutor | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        preprocess: Preprocess,
        target: int,
        thumbnail_size: int | None = None,
    ) -> "ImageLoader":
        """A loader with the caps, timeout and worker count of `settings`."""
        limits = ImageLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            timeout=settings.http_timeout,
        )
        return cls(
            preprocess,
            target=target,
            limits=limits,
            workers=settings.decode_workers,
            thumbnail_size=thumbnail_size,
        )

    def __enter__(self) -> "ImageLoader":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and delete the URL spool."""
        self._stop_pool()
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    def load(self, items: Iterable[Item]) -> Iterator[DecodedImage]:
        """Yield one `DecodedImage` per `(index, ref)`, in completion order.

        A bad image comes back with `error` set; nothing is raised for one image.
        At most `in_flight` images are read ahead of the consumer. If a worker
        process dies (a decoder crash, the OOM killer), the pool is restarted and
        the images it held are retried one at a time, so only the one that kills
        a worker again is reported, as "the decoding worker crashed on this image".
        """
        if self.workers == 1:
            for index, ref in items:
                yield self._finish(_load_one(self._job, index, self._source_of(ref)), ref)
            return
        pending: dict[Future[_Outcome], tuple[Item, bool]] = {}
        suspects: deque[Item] = deque()
        source = iter(items)
        broken = False
        try:
            while True:
                if broken and not pending:
                    self._stop_pool()  # a broken pool has no workers left
                    broken = False
                if not broken:
                    broken = self._fill(pending, source, suspects)
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    (index, ref), alone = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if not alone:
                            suspects.append((index, ref))
                            continue
                        outcome = _Outcome(
                            index, None, None, "the decoding worker crashed on this image"
                        )
                    except Exception as error:  # a bug in a worker; keep the run going
                        outcome = _Outcome(index, None, None, f"unexpected error: {error!r}")
                    yield self._finish(outcome, ref)
        except (KeyboardInterrupt, SystemExit):
            self._stop_pool(running=pending)
            raise
        finally:
            for future in pending:
                future.cancel()

    def _fill(
        self,
        pending: dict[Future[_Outcome], tuple[Item, bool]],
        source: Iterator[Item],
        suspects: deque[Item],
    ) -> bool:
        """Submit work up to `in_flight`; a suspect of a crash runs alone.

        Returns whether the pool turned out to be broken (a crash not yet seen
        through a future); the item that could not be submitted becomes a suspect.
        """
        pool = self._ensure_pool()
        while len(pending) < self.in_flight:
            alone = bool(suspects)
            if alone and pending:
                return False
            item = suspects.popleft() if alone else next(source, None)
            if item is None:
                return False
            try:
                pending[self._submit(pool, item)] = (item, alone)
            except BrokenProcessPool:
                suspects.appendleft(item)
                return True
            if alone:
                return False
        return False

    def _submit(self, pool: Executor, item: Item) -> Future[_Outcome]:
        index, ref = item
        return pool.submit(_load_one, self._job, index, self._source_of(ref))

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._pool

    def _stop_pool(self, running: Iterable[Future[_Outcome]] | None = None) -> None:
        """Shut the pool down, dropping queued work.

        Without `running`, wait for the workers to finish what they hold. With the
        futures still `running`, give them `stop_grace` seconds, then terminate the
        workers. Terminating while a worker writes a result would leave the pool's
        reader thread waiting for the rest forever (Python 3.11), so that only
        happens once no result is on its way, or after the grace period.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if running is None:
            pool.shutdown(wait=True, cancel_futures=True)
            return
        # ProcessPoolExecutor has no public way to reach its workers before Python 3.14.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        wait(list(running), timeout=self.stop_grace)
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + 5.0
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))

    def _finish(self, outcome: _Outcome, ref: ImageRef) -> DecodedImage:
        spooled = self._spooled(ref)
        if spooled is not None:
            spooled.unlink(missing_ok=True)
        pixels = None if outcome.pixels is None else torch.from_numpy(outcome.pixels)
        return DecodedImage(outcome.index, outcome.sha256, pixels, outcome.error, outcome.thumbnail)

    def hash_only(self, items: Iterable[Item]) -> Iterator[tuple[int, str | ImageError]]:
        """Yield `(index, sha256 or the ImageError)` per item, in completion order.

        Reads in `io_threads` threads without decoding; downloaded URLs are kept
        in the spool for the next `load` of the same URL.
        """
        source = iter(items)
        if self._spool is None:  # made here, before the threads that write to it
            self._spool = Path(tempfile.mkdtemp(prefix="vitrine-spool-", dir=self._spool_parent))
        with ThreadPoolExecutor(self.io_threads, thread_name_prefix="vitrine-hash") as threads:
            pending: dict[Future[str], int] = {}
            try:
                while True:
                    for index, ref in source:
                        pending[threads.submit(self._hash_one, ref)] = index
                        if len(pending) >= 2 * self.io_threads:
                            break
                    if not pending:
                        return
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = pending.pop(future)
                        try:
                            result: str | ImageError = future.result()
                        except ImageError as error:
                            result = error
                        yield index, result
            finally:
                for future in pending:
                    future.cancel()

    def _hash_one(self, ref: ImageRef) -> str:
        limits = self._job.limits
        if ref.kind == "file":
            assert ref.path is not None
            with _open_file(ref.path, limits.max_bytes) as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest()
        data = _read(ref, limits)
        with suppress(OSError):  # a full disk: `load` downloads it again
            self._spool_write(ref, data)
        return sha256_hex(data)

    def _spool_path(self, ref: ImageRef) -> Path | None:
        if ref.kind != "url" or self._spool is None:
            return None
        assert ref.url is not None
        return self._spool / sha256_hex(ref.url.encode())

    def _spooled(self, ref: ImageRef) -> Path | None:
        path = self._spool_path(ref)
        return path if path is not None and path.is_file() else None

    def _source_of(self, ref: ImageRef) -> ImageRef:
        """The spooled copy of a URL already downloaded by `hash_only`, else `ref`."""
        spooled = self._spooled(ref)
        return ImageRef(kind="file", path=spooled) if spooled is not None else ref

    def _spool_write(self, ref: ImageRef, data: bytes) -> None:
        path = self._spool_path(ref)
        assert path is not None
        partial = path.with_name(f"{path.name}.{os.getpid()}.{id(data)}.part")
        partial.write_bytes(data)
        partial.replace(path)  # never read half-written
