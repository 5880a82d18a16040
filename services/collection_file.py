"""The portable collection file: one collection's points as JSON Lines.

Format version 1, one JSON object per line, gzip-compressed when the file
name ends in `.gz` (readers recognise either by its first bytes):

    {"format": "vitrine-collection", "version": 1, "collection": "prints",
     "model_version": "...", "vector_size": 512, ...}                    header
    {"id": "<uuid>", "vectors": {"image": "<base64>", "caption": "<base64>"},
     "payload": {...}, "thumbnail": "<base64 JPEG>"}                     one per point
    {"end": true, "points": 1234}                                        end marker

Vectors are little-endian float32 in base64: exact, and a quarter of the size
of decimal text. A file is written under a temporary name and renamed when
complete; a reader refuses one without a matching end marker, so a copy cut
short is never taken for the whole collection.
"""

import base64
import gzip
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from services.errors import VitrineError

FORMAT = "vitrine-collection"
FORMAT_VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"

Line = dict[str, Any]


class TransferFileError(VitrineError):
    """A collection file cannot be read, is incomplete, or does not fit the target."""


def encode_vector(vector: list[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> list[float]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").tolist()


@contextmanager
def write_collection_file(path: Path, header: Line) -> Iterator[Callable[[Line], None]]:
    """Write `header`, then each point line given to the yielded function, then the end.

    The file appears at `path` only if the block finishes without an error.
    """
    count = 0
    with _atomic_text(path) as stream:
        _write(stream, {"format": FORMAT, "version": FORMAT_VERSION, **header})

        def write_point(line: Line) -> None:
            nonlocal count
            _write(stream, line)
            count += 1

        yield write_point
        _write(stream, {"end": True, "points": count})


@contextmanager
def read_collection_file(path: Path, page: int) -> Iterator[tuple[Line, Iterator[list[Line]]]]:
    """The header and the point lines in pages of `page`.

    Raises:
        TransferFileError: not a collection file, damaged, or (once the pages
            run out) incomplete.
    """
    if not path.is_file():
        raise TransferFileError(f"{path} does not exist or is not a file.")
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    with _text_file(path, "r", compressed=compressed) as stream:
        lines = _guarded(path, stream)
        header = _header(path, lines)
        yield header, _pages(path, lines, page)


def _header(path: Path, lines: Iterator[str]) -> Line:
    first = next(lines, "")
    header = _parse(path, first) if first.strip() else {}
    if header.get("format") != FORMAT:
        raise TransferFileError(
            f"{path} is not a vitrine collection file (write one with "
            "`vitrine collections export NAME PATH`)."
        )
    if header.get("version") != FORMAT_VERSION:
        raise TransferFileError(
            f"{path} has format version {header.get('version')}; this vitrine reads version "
            f"{FORMAT_VERSION}. Use the vitrine version that wrote it, or a newer one."
        )
    return header


def _pages(path: Path, lines: Iterator[str], size: int) -> Iterator[list[Line]]:
    read = 0
    page: list[Line] = []
    for entry in (_parse(path, line) for line in lines if line.strip()):
        if "end" in entry:
            if entry.get("points") != read:
                break
            if page:
                yield page
            return
        page.append(entry)
        read += 1
        if len(page) == size:
            yield page
            page = []
    raise TransferFileError(
        f"{path} is incomplete ({read} points read, no end marker that counts them): it was "
        "probably cut short while copying. Copy it again and run the import again; what "
        "was imported so far is not visible to searches and will be completed."
    )


def _guarded(path: Path, stream: IO[str]) -> Iterator[str]:
    """The lines of `stream`; a damaged file becomes a TransferFileError."""
    try:
        yield from stream
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TransferFileError(
            f"{path} is damaged or cut short ({error}): copy it again and run the import again."
        ) from error


def _parse(path: Path, line: str) -> Line:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise TransferFileError(
            f"{path} is damaged: a line is not JSON ({error}). Copy it again, or export again."
        ) from error
    if not isinstance(value, dict):
        raise TransferFileError(f"{path} is damaged: a line is not a JSON object.")
    return value


def _write(stream: IO[str], line: Line) -> None:
    stream.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")


@contextmanager
def _atomic_text(path: Path) -> Iterator[IO[str]]:
    """A text stream whose file appears at `path` only once it is completely written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        with _text_file(temporary, "w", compressed=path.name.endswith(".gz")) as stream:
            yield stream
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _text_file(path: Path, mode: Literal["r", "w"], *, compressed: bool) -> IO[str]:
    if not compressed:
        return path.open(mode, encoding="utf-8")
    if mode == "w":
        return gzip.open(path, "wt", encoding="utf-8")
    return gzip.open(path, "rt", encoding="utf-8")
