"""Move a collection between stores (embedded <-> server) as one portable file.

The embedded store has no snapshots, so a collection travels as a collection
file (`services.collection_file`): `export_collection` streams its points,
vectors, payloads and thumbnails page by page into one; `import_collection`
reads one into the physical collection for its model version in any store,
and only once every point is stored points the alias at it, so a search never
sees a half-imported collection. Point ids and the payload's `collection`
derive from the collection name, so a collection imported under another name
gets those of that name.

Example:
    >>> export_collection(services, "prints", Path("prints.vitrine.jsonl.gz"))
    >>> import_collection(other, Path("prints.vitrine.jsonl.gz"), name="prints-copy")
"""

import base64
import binascii
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qdrant_client import models

from services.collection_file import (
    Line,
    TransferFileError,
    decode_vector,
    encode_vector,
    read_collection_file,
    write_collection_file,
)
from services.collection_state import CollectionState, check_name, utc_now
from services.errors import ModelUnavailableError
from services.models import ModelSpec
from services.store import physical_name, point_id
from services.thumbnails import thumbnail_path
from services.wiring import Services

PAGE = 256

Progress = Callable[[int], None]


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
        "collection": name,
        "model_version": info.model_version,
        "vector_size": info.vector_size,
        "model": _model_entry(services, info.model_version),
        "state": _state_entry(services, name),
        "exported_at": utc_now(),
    }
    count = pictures = 0
    with write_collection_file(path, header) as write:
        for record in store.scroll(info.physical, with_vectors=True, page=PAGE):
            line: Line = {
                "id": str(record.id),
                "vectors": {key: encode_vector(value) for key, value in _vectors(record).items()},
                "payload": record.payload or {},
            }
            thumb = thumbnail_path(services.settings.data_dir, name, str(record.id))
            if thumbnails and thumb.is_file():
                line["thumbnail"] = base64.b64encode(thumb.read_bytes()).decode("ascii")
                pictures += 1
            write(line)
            count += 1
            if progress:
                progress(1)
    return ExportSummary(name, str(path), count, pictures, info.model_version)


def import_collection(
    services: Services,
    path: Path,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Load a collection file into the store under `name` (default: its exported name).

    Running it again after an interruption completes the import.

    Raises:
        TransferFileError: the file is not a collection file, is damaged or
            incomplete, or the collection already exists in this store.
    """
    store = services.store
    with read_collection_file(path, PAGE) as (header, pages):
        target = check_name(name or str(header["collection"]))
        version = str(header["model_version"])
        if store.exists(target):
            raise TransferFileError(
                f"There is already a collection named {target!r} here. Import under another "
                "name with --name, or remove the existing one first."
            )
        physical = physical_name(target, version)
        store.create_physical(physical, int(header["vector_size"]))
        source = str(header["collection"])
        count = pictures = 0
        for page in pages:
            points = [_point(path, entry, source, target) for entry in page]
            pictures += _save_thumbnails(services.settings.data_dir, target, page, points)
            store.upsert(physical, points)
            count += len(points)
            if progress:
                progress(len(points))
    store.optimize(physical)
    stored = store.count(physical)
    if stored != count:
        raise TransferFileError(
            f"{physical} holds {stored} points after importing {count}: it held other points "
            "before (an earlier import of a different file). Remove it and import again."
        )
    store.point_alias(target, physical)
    notes = _adopt_model(services, version, header.get("model"))
    _adopt_state(services, target, version, header.get("state"))
    return ImportSummary(target, physical, count, pictures, version, notes)


def _vectors(record: models.Record) -> dict[str, list[float]]:
    vectors = record.vector
    if not isinstance(vectors, dict):
        raise TransferFileError(f"Point {record.id} has no named vectors: not a vitrine point.")
    return {key: list(value) for key, value in vectors.items()}  # type: ignore[arg-type]


def _point(path: Path, entry: Line, source: str, target: str) -> models.PointStruct:
    """The stored point of a file line, as if ingested under the target name.

    Point ids and the payload's `collection` come from the collection name; the
    stored fingerprint keeps the old name, so the next ingest under the new name
    refreshes the metadata (without embedding the images again).
    """
    payload = dict(entry.get("payload") or {})
    record_id = payload.get("record_id")
    renamed = target != source and record_id is not None
    if renamed and payload.get("collection") == source:
        payload["collection"] = target
    try:
        pid = point_id(target, str(record_id)) if renamed else str(entry["id"])
        vectors: dict[str, Any] = {
            key: decode_vector(value) for key, value in entry["vectors"].items()
        }
    except (KeyError, AttributeError, binascii.Error, ValueError) as error:
        raise TransferFileError(
            f"{path} is damaged: a point line is malformed ({error})."
        ) from error
    return models.PointStruct(id=pid, vector=vectors, payload=payload)


def _save_thumbnails(
    data_dir: Path, collection: str, page: list[Line], points: list[models.PointStruct]
) -> int:
    saved = 0
    for entry, point in zip(page, points, strict=True):
        if "thumbnail" in entry:
            picture = thumbnail_path(data_dir, collection, str(point.id))
            _write_bytes_atomic(picture, base64.b64decode(entry["thumbnail"]))
            saved += 1
    return saved


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
