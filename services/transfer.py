"""Move a collection between stores (embedded <-> server) as one portable file.

The embedded store has no snapshots, so a collection travels as JSON Lines:
`export_collection` streams its points page by page into a file that is
written under a temporary name and renamed only when complete;
`import_collection` reads such a file into the physical collection for its
model version in any store, checks the point count, and only then points the
alias at it, so a search never sees a half-imported collection.

File format (version 1), one JSON object per line, gzip-compressed when the
file name ends in `.gz`:

    {"format": "vitrine-collection", "version": 1, "collection": "prints",
     "model_version": "...", "vector_size": 512, "model": {"name", "pretrained"} | null,
     "state": {"source", "mapping"} | null, "exported_at": "..."}
    {"id": "<uuid>", "vectors": {"image": "<base64>", "caption": "<base64>"},
     "payload": {...}, "thumbnail": "<base64 JPEG>"}          (one line per point)
    {"end": true, "points": 1234}

Vectors are little-endian float32 in base64: exact and a quarter of the size
of decimal text. Point ids are uuid5 of the collection name and record id, so
a collection imported under another name gets the ids of that name.

Example:
    >>> export_collection(services, "prints", Path("prints.vitrine.jsonl.gz"))
    >>> import_collection(other_services, Path("prints.vitrine.jsonl.gz"), name="prints-copy")
"""

import base64
import gzip
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from qdrant_client import models

from services.collection_state import CollectionState, check_name, utc_now
from services.errors import ModelUnavailableError, VitrineError
from services.models import ModelSpec
from services.store import physical_name, point_id
from services.thumbnails import thumbnail_path
from services.wiring import Services

FORMAT = "vitrine-collection"
FORMAT_VERSION = 1
PAGE = 256
GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[int], None]


class TransferFileError(VitrineError):
    """A collection file cannot be read, is incomplete, or does not fit the target."""


@dataclass(frozen=True)
class ExportSummary:
    collection: str
    path: str
    points: int
    thumbnails: int
    model_version: str


@dataclass(frozen=True)
class ImportSummary:
    collection: str
    physical: str
    points: int
    thumbnails: int
    model_version: str
    notes: list[str] = field(default_factory=list)


def encode_vector(vector: list[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> list[float]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").tolist()


def export_collection(
    services: Services,
    name: str,
    path: Path,
    *,
    thumbnails: bool = True,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write collection `name` with its vectors, payloads and thumbnails to `path`.

    Raises:
        CollectionNotFoundError: there is no collection `name`.
    """
    store = services.store
    info = store.info(name)
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "collection": name,
        "model_version": info.model_version,
        "vector_size": info.vector_size,
        "model": _model_entry(services, info.model_version),
        "state": _state_entry(services, name),
        "exported_at": utc_now(),
    }
    count = pictures = 0
    with _atomic_lines(path) as out:
        _write_line(out, header)
        for record in store.scroll(info.physical, with_vectors=True, page=PAGE):
            line: dict[str, Any] = {
                "id": str(record.id),
                "vectors": {key: encode_vector(value) for key, value in _vectors(record).items()},
                "payload": record.payload or {},
            }
            thumb = thumbnail_path(services.settings.data_dir, name, str(record.id))
            if thumbnails and thumb.is_file():
                line["thumbnail"] = base64.b64encode(thumb.read_bytes()).decode("ascii")
                pictures += 1
            _write_line(out, line)
            count += 1
            if progress:
                progress(1)
        _write_line(out, {"end": True, "points": count})
    return ExportSummary(name, str(path), count, pictures, info.model_version)


def import_collection(
    services: Services,
    path: Path,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Load a collection file into the store under `name` (default: its exported name).

    Raises:
        TransferFileError: the file is not a collection file, is incomplete, or
            the collection already exists in this store.
    """
    store = services.store
    with _open_lines(path) as lines:
        header = _read_header(path, lines)
        target = check_name(name or str(header["collection"]))
        version = str(header["model_version"])
        if store.exists(target):
            raise TransferFileError(
                f"There is already a collection named {target!r} here. Import under another "
                "name with --name, or remove the existing one first."
            )
        physical = physical_name(target, version)
        store.create_physical(physical, int(header["vector_size"]))
        renamed = target != header["collection"]
        count = pictures = 0
        ended: dict[str, Any] | None = None
        for page in _pages(path, lines):
            points = []
            for entry in page:
                if entry.get("end"):
                    ended = entry
                    break
                pid = _target_id(entry, target, renamed)
                points.append(
                    models.PointStruct(
                        id=pid,
                        vector={k: decode_vector(v) for k, v in entry["vectors"].items()},
                        payload=entry.get("payload") or {},
                    )
                )
                if "thumbnail" in entry:
                    picture = thumbnail_path(services.settings.data_dir, target, pid)
                    _write_bytes_atomic(picture, base64.b64decode(entry["thumbnail"]))
                    pictures += 1
            store.upsert(physical, points)
            count += len(points)
            if progress:
                progress(len(points))
            if ended is not None:
                break
    _check_complete(path, ended, count, store.count(physical), physical)
    store.point_alias(target, physical)
    notes = _adopt_model(services, version, header.get("model"))
    _adopt_state(services, target, version, header.get("state"))
    return ImportSummary(target, physical, count, pictures, version, notes)


# -- the file -----------------------------------------------------------------------


@contextmanager
def _atomic_lines(path: Path) -> Iterator[IO[str]]:
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


def _write_line(stream: IO[str], value: dict[str, Any]) -> None:
    stream.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")


@contextmanager
def _open_lines(path: Path) -> Iterator[IO[str]]:
    if not path.is_file():
        raise TransferFileError(f"{path} does not exist or is not a file.")
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    with _text_file(path, "r", compressed=compressed) as stream:
        yield stream


def _text_file(path: Path, mode: Literal["r", "w"], *, compressed: bool) -> IO[str]:
    if not compressed:
        return path.open(mode, encoding="utf-8")
    if mode == "w":
        return gzip.open(path, "wt", encoding="utf-8")
    return gzip.open(path, "rt", encoding="utf-8")


def _parse(path: Path, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise TransferFileError(f"{path} is damaged: a line is not JSON ({error}).") from error
    if not isinstance(value, dict):
        raise TransferFileError(f"{path} is damaged: a line is not a JSON object.")
    return value


def _read_header(path: Path, lines: IO[str]) -> dict[str, Any]:
    try:
        first = lines.readline()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TransferFileError(f"{path} cannot be read: {error}.") from error
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


def _pages(path: Path, lines: IO[str]) -> Iterator[list[dict[str, Any]]]:
    entries = (_parse(path, line) for line in lines if line.strip())
    try:
        while page := list(islice(entries, PAGE)):
            yield page
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TransferFileError(f"{path} is damaged or cut short: {error}.") from error


def _check_complete(
    path: Path, ended: dict[str, Any] | None, read: int, stored: int, physical: str
) -> None:
    if ended is None or ended.get("points") != read:
        raise TransferFileError(
            f"{path} is incomplete ({read} points read, no end marker matching them): it was "
            "probably cut short while copying. Copy it again and re-run the import; the "
            f"partial collection {physical} is not visible to searches and will be filled in."
        )
    if stored != read:
        raise TransferFileError(
            f"{physical} holds {stored} points after importing {read}: it held other points "
            "before (an earlier, different import). Remove it and import again."
        )


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- points, model and state ---------------------------------------------------------


def _vectors(record: models.Record) -> dict[str, list[float]]:
    vectors = record.vector
    if not isinstance(vectors, dict):
        raise TransferFileError(f"Point {record.id} has no named vectors: not a vitrine point.")
    return {key: list(value) for key, value in vectors.items()}  # type: ignore[arg-type]


def _target_id(entry: dict[str, Any], target: str, renamed: bool) -> str:
    """The point id under the target name (ids derive from the collection name)."""
    record_id = (entry.get("payload") or {}).get("record_id")
    if renamed and record_id is not None:
        return point_id(target, str(record_id))
    return str(entry["id"])


def _model_entry(services: Services, version: str) -> dict[str, Any] | None:
    try:
        spec = services.catalog.spec_for(version)
    except ModelUnavailableError:
        return None
    return {"name": spec.name, "pretrained": spec.pretrained}


def _state_entry(services: Services, name: str) -> dict[str, Any] | None:
    state = services.states.load(name)
    return {"source": state.source, "mapping": state.mapping} if state else None


def _adopt_model(services: Services, version: str, entry: dict[str, Any] | None) -> list[str]:
    """Make the model version known here, or say what is missing for searching."""
    catalog = services.catalog
    try:
        catalog.spec_for(version)
        return []
    except ModelUnavailableError:
        pass
    missing = (
        f"The model version {version!r} is not available here, so the collection cannot be "
        f"searched yet: copy its model folder to {catalog.registry / version}"
    )
    if entry is None:
        return [missing + " (the file does not say which model built it)."]
    spec = ModelSpec(str(entry["name"]), entry.get("pretrained"))
    if spec.is_local and not (spec.local_path / "open_clip_config.json").is_file():
        return [missing + f" (it was {spec.local_path} where the collection was exported)."]
    catalog.remember(version, spec)
    return []


def _adopt_state(services: Services, name: str, version: str, entry: dict[str, Any] | None) -> None:
    """Keep the remembered source and column mapping, so a re-ingest needs no flags."""
    if entry is None or services.states.load(name) is not None:
        return
    services.states.save(
        CollectionState(
            name=name,
            source=entry.get("source"),
            mapping=entry.get("mapping") or {},
            model_version=version,
        )
    )
