"""Reading, checking, decoding and preprocessing images for ingest, in parallel.

Stages, each usable alone:

- `read_bytes` (ingest.image_fetch): a file (size checked before reading) or an http(s) URL (streamed
  under a size cap and a deadline; connection faults, timeouts, HTTP 5xx and 429
  retried with exponential back-off, other HTTP errors not).
- `decode` (ingest.image_decode): PIL with a pixel cap, JPEG draft mode (libjpeg decodes a big scan at
  1/2, 1/4 or 1/8 scale, keeping at least twice the model's input size on the
  short side), EXIF rotation, and any mode to RGB (transparency on white).
- `ImageLoader.load`: read + hash + decode + the model's own preprocess off the
  main thread, so the main thread only stacks tensors and runs the model.

Where that work runs. A model's standard eval transform (open_clip's resize,
centre crop, to-tensor, normalise: `ModelInput`) on a JPEG or PNG runs in
threads of this process: PIL and numpy release the GIL while they decode, resize
and scale, and threads cost no start-up, no pickling and no second copy of
torch. Everything else (other formats, whose decoders are the ones with a record
of crashes, and transforms we do not know, which may run anything) runs in
worker processes, where a crash costs one image: see `decodes_in_thread`.

Worker processes are started with `spawn`: the parent may hold CUDA, torch's
thread pools or gRPC threads, none of which survive `fork` reliably. Starting a
worker imports torch and the transform's package (a few seconds, once per
loader, and only when a first image needs one). Pixels come back as numpy arrays
through the pool's pipe rather than torch shared memory, which small `/dev/shm`
mounts (Docker's 64 MB) cannot hold.

Hash first, decode later: `ImageLoader.hash_only` reads and hashes in threads so a
caller can skip unchanged images without decoding them. Files are simply read
again by `load` (the page cache makes that cheap). URLs are fetched once: the
hash step spools their bytes into a temporary folder owned by the loader, `load`
reads the spooled copy and deletes it, and `close` removes what is left (the
images the caller skipped). Hash and load in chunks to keep that folder small.
"""

import hashlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from open_clip.transform import CenterCropOrPad, MaybeConvertMode, ResizeKeepRatio
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor

from ingest.image_decode import decode, decodes_in_thread, make_thumbnail
from ingest.image_fetch import ImageLimits, open_image_file, read_bytes, sha256_hex
from ingest.image_refs import ImageError, ImageRef
from services.settings import Settings

Preprocess = Callable[[Image.Image], torch.Tensor]
Item = tuple[int, ImageRef]  # the caller's index (a row number) and where the image is

# Steps of an eval transform that take a PIL image to a PIL image and nothing else.
_PIL_STEPS = (Resize, CenterCrop, ResizeKeepRatio, CenterCropOrPad, MaybeConvertMode)


@dataclass(frozen=True)
class ModelInput:
    """A model's eval transform, split so that no step of it runs torch.

    Its PIL steps (resize, centre crop, RGB) run as they are; its to-tensor and
    normalise steps are done in numpy with the same float32 arithmetic (divide
    by 255, subtract the mean, divide by the std), so the pixels equal the
    transform's. Numpy starts no thread pool and releases the GIL, so decoding
    threads can run it beside the model's forward pass.
    """

    steps: tuple[Callable[[Image.Image], Image.Image], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    _scale: tuple[npt.NDArray[np.float32], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mean, std = (
            np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) for v in (self.mean, self.std)
        )
        object.__setattr__(self, "_scale", (mean, std))

    def __call__(self, image: Image.Image) -> npt.NDArray[np.float32]:
        """An RGB image as model-ready float32 (C, H, W) pixels."""
        for step in self.steps:
            image = step(image)
        array = np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
        mean, std = self._scale
        return (array.astype(np.float32) / np.float32(255) - mean) / std


def model_input(preprocess: Callable[..., Any]) -> ModelInput | None:
    """`preprocess` as a `ModelInput`, if it is an eval transform of known steps.

    Known: a torchvision `Compose` of PIL resize / crop / mode steps (torchvision's
    and open_clip's), then a to-tensor, then `Normalize`, which is what open_clip's
    `create_model_and_transforms` gives for inference. Anything else: None.
    """
    if not isinstance(preprocess, Compose) or len(preprocess.transforms) < 2:
        return None
    *steps, to_tensor, normalize = preprocess.transforms
    if not (isinstance(to_tensor, ToTensor) and type(normalize) is Normalize):
        return None
    if not all(type(step) in _PIL_STEPS for step in steps):
        return None
    return ModelInput(tuple(steps), _channels(normalize.mean), _channels(normalize.std))


def _channels(values: float | Sequence[float]) -> tuple[float, ...]:
    """Normalize's mean or std (a number, a sequence or a tensor) as floats."""
    return tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))


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
    """What a worker sends back; pixels as numpy so they travel by plain pickle.

    `isolate`: read fine, but in a format a thread does not decode; the loader
    sends the image on to a worker process, which reads it again (a file from
    the page cache, a URL from the spool when `hash_only` fetched it).
    """

    index: int
    sha256: str | None
    pixels: npt.NDArray[Any] | None
    error: str | None
    thumbnail: bytes | None = None
    isolate: bool = False


@dataclass(frozen=True)
class _DecodeJob:
    preprocess: Callable[[Image.Image], torch.Tensor | npt.NDArray[Any]]
    target: int
    limits: ImageLimits
    thumbnail_size: int | None = None


@dataclass(frozen=True)
class _Task:
    """One image on its way: in a worker process (`isolated`) or a thread.

    `alone`: it was in a process pool that crashed, so it is retried with no
    other process task running, to tell which image did it.
    """

    item: Item
    isolated: bool
    alone: bool = False


def _read(ref: ImageRef, limits: ImageLimits) -> bytes:
    return read_bytes(
        ref,
        max_bytes=limits.max_bytes,
        timeout=limits.timeout,
        attempts=limits.attempts,
        backoff=limits.backoff,
    )


def _load_one(job: _DecodeJob, index: int, ref: ImageRef, threaded: bool = False) -> _Outcome:
    """Read, hash, decode and preprocess one image; every failure becomes an outcome.

    In a thread (`threaded`), only formats `decodes_in_thread` accepts are decoded;
    others come back with `isolate` set.
    """
    try:
        data = _read(ref, job.limits)
    except ImageError as error:
        return _Outcome(index, None, None, error.reason)
    digest = sha256_hex(data)
    if threaded and not decodes_in_thread(data):
        return _Outcome(index, digest, None, None, isolate=True)
    try:
        image = decode(data, target=job.target, max_pixels=job.limits.max_pixels)
        del data
        pixels = job.preprocess(image)
    except ImageError as error:
        return _Outcome(index, digest, None, error.reason)
    except Exception as error:  # a transform failing on an odd image must not stop a run
        return _Outcome(index, digest, None, f"cannot preprocess image: {error}")
    thumbnail = make_thumbnail(image, job.thumbnail_size) if job.thumbnail_size else None
    array = pixels.contiguous().numpy() if isinstance(pixels, torch.Tensor) else pixels
    return _Outcome(index, digest, array, None, thumbnail)


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group; only the parent handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _isolated(pending: dict[Future[_Outcome], _Task]) -> bool:
    return any(task.isolated for task in pending.values())


def _result(future: Future[_Outcome], task: _Task, retry: deque[_Task]) -> _Outcome | None:
    """The task's outcome, or None when it is queued again for a worker process.

    A thread hands on a format it does not decode. A broken pool fails every
    task it held: each is retried alone, and one that breaks a pool alone is
    reported as the image that crashed it.
    """
    index = task.item[0]
    try:
        outcome = future.result()
    except BrokenProcessPool:
        if task.alone:
            return _Outcome(index, None, None, "the decoding worker crashed on this image")
        retry.append(replace(task, alone=True))
        return None
    except Exception as error:  # a bug in a worker; keep the run going
        return _Outcome(index, None, None, f"unexpected error: {error!r}")
    if outcome.isolate:
        retry.append(_Task(task.item, isolated=True))
        return None
    return outcome


class ImageLoader:
    """Loads images in parallel, ready for `Embedder.encode_pixels`.

    Use it as a context manager (or call `close`): it owns a thread pool and a
    process pool, both kept across `load` calls, and a spool folder for
    downloaded URLs.

    Args:
        preprocess: the model's transform, or any picklable callable from an RGB
            image to a tensor (it is sent to worker processes). A transform that
            `model_input` recognises runs in threads for JPEG and PNG.
        target: the model's input size (decoding keeps twice that).
        limits: size caps and network behaviour.
        workers: decoding threads, and as many worker processes for what threads
            do not decode; 0 means one per CPU core, 1 runs everything inline.
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
        fast = model_input(preprocess)
        self.threaded = fast is not None
        self._job = _DecodeJob(fast or preprocess, target, limits, thumbnail_size)
        self._spool_parent = spool_parent
        self.stop_grace = stop_grace
        self._spool: Path | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        preprocess: Preprocess,
        target: int,
        thumbnail_size: int | None = None,
    ) -> "ImageLoader":
        """A loader with the caps, timeout and worker count of `settings`.

        It reads two batches ahead, so the next batch decodes while the model
        runs on this one.
        """
        limits = ImageLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            timeout=settings.http_timeout,
        )
        workers = settings.decode_workers or os.cpu_count() or 1
        return cls(
            preprocess,
            target=target,
            limits=limits,
            workers=workers,
            in_flight=max(4 * workers, 2 * settings.batch_size),
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
        self._stop_threads()
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
        pending: dict[Future[_Outcome], _Task] = {}
        retry: deque[_Task] = deque()  # handed on by a thread, or suspects of a crash
        source = iter(items)
        broken = False
        try:
            while True:
                if broken and not _isolated(pending):
                    self._stop_pool()  # a broken pool has no workers left
                    broken = False
                if not broken:
                    broken = self._fill(pending, source, retry)
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    broken = broken or isinstance(future.exception(), BrokenProcessPool)
                    outcome = _result(future, task, retry)
                    if outcome is not None:
                        yield self._finish(outcome, task.item[1])
        except (KeyboardInterrupt, SystemExit):
            self._stop_threads(wait_running=False)
            self._stop_pool(running=pending)
            raise
        finally:
            for future in pending:
                future.cancel()

    def _fill(
        self,
        pending: dict[Future[_Outcome], _Task],
        source: Iterator[Item],
        retry: deque[_Task],
    ) -> bool:
        """Submit work up to `in_flight`; a suspect of a crash runs alone.

        Returns whether the process pool turned out to be broken (a crash not yet
        seen through a future); the task that could not be submitted is retried.
        """
        while len(pending) < self.in_flight:
            if retry:
                if retry[0].alone and _isolated(pending):
                    return False
                task = retry.popleft()
            else:
                item = next(source, None)
                if item is None:
                    return False
                task = _Task(item, isolated=not self.threaded)
            try:
                pending[self._submit(task)] = task
            except BrokenProcessPool:
                retry.appendleft(task)
                return True
            if task.alone:
                return False
        return False

    def _submit(self, task: _Task) -> Future[_Outcome]:
        index, ref = task.item
        source = self._source_of(ref)
        if task.isolated:
            return self._ensure_pool().submit(_load_one, self._job, index, source)
        return self._ensure_threads().submit(_load_one, self._job, index, source, True)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._pool

    def _ensure_threads(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="vitrine-decode")
        return self._threads

    def _stop_threads(self, wait_running: bool = True) -> None:
        """Drop queued work; a running decode cannot be stopped and ends by itself."""
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=wait_running, cancel_futures=True)

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
            with open_image_file(ref.path, limits.max_bytes) as handle:
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
