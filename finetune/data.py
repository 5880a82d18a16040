"""Training examples from a manifest or from an existing collection.

An example is one image with its candidate captions and the metadata that
grouping and zero-shot labels need. Rows without an image or without any
caption are skipped and written to the run's report, never fatal.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.captions import CaptionBuilder
from ingest.image_refs import ImageError, ImageRef, resolve_ref
from ingest.mapping import ColumnMapping
from ingest.records import Record, RowProblem
from ingest.report import ErrorReport
from ingest.sources import open_source
from services.errors import SourceError
from services.store import Store

Fields = dict[str, tuple[str, ...]]

_RECORD_TEXT_FIELDS = ("caption", "title", "date", "place", "collection", "license", "url")


@dataclass(frozen=True)
class Example:
    """One training pair: `captions[0]` is the canonical caption."""

    id: str
    image: ImageRef
    captions: tuple[str, ...]
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def values(self, name: str) -> tuple[str, ...]:
        """The item's values of a metadata field (empty when it has none)."""
        return self.fields.get(name, ())


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(text for item in value if (text := str(item).strip()))
    text = str(value).strip()
    return (text,) if text else ()


def record_fields(record: Record) -> Fields:
    """A record's metadata as field -> values (extra columns included under their names)."""
    found: Fields = {name: _strings(value) for name, value in record.extra.items()}
    for name in _RECORD_TEXT_FIELDS:
        found[name] = _strings(getattr(record, name))
    found["iconclass"] = record.iconclass
    found["aat"] = record.aat
    found["aat_labels"] = _strings(record.extra.get("aat_labels"))
    return {name: values for name, values in found.items() if values}


def payload_fields(payload: Mapping[str, Any]) -> Fields:
    """A stored point's payload as field -> values (its `extra` columns included)."""
    found: Fields = {
        name: _strings(value) for name, value in dict(payload.get("extra") or {}).items()
    }
    for name, value in payload.items():
        if name != "extra" and not isinstance(value, dict):
            found[name] = _strings(value)
    return {name: values for name, values in found.items() if values}


def build_examples(
    items: Iterable[tuple[str, str | None, Fields]],
    root: Path,
    builder: CaptionBuilder,
    report: ErrorReport,
) -> list[Example]:
    """Examples from (id, image reference, fields); skipped items go to `report`."""
    examples = []
    for record_id, image, fields in items:
        if not image:
            report.add("image", "no image given", record_id=record_id)
            continue
        try:
            ref = resolve_ref(image, root)
        except ImageError as error:
            report.add("image", error.reason, record_id=record_id, image=image)
            continue
        captions = builder.captions(record_id, fields)
        if not captions:
            report.add(
                "metadata",
                "no caption: the item has no caption and no metadata the templates can use",
                record_id=record_id,
            )
            continue
        examples.append(Example(record_id, ref, tuple(captions), fields))
    return examples


def manifest_examples(
    path: Path, mapping: ColumnMapping, builder: CaptionBuilder, report: ErrorReport
) -> list[Example]:
    """Examples from a manifest or image folder, read as `vitrine ingest` reads it.

    Raises:
        SourceError: the source cannot be read at all.
    """
    source = open_source(path, mapping)

    def rows() -> Iterable[tuple[str, str | None, Fields]]:
        for row in source.records():
            if isinstance(row, RowProblem):
                report.add("row", row.reason, record_id=row.record_id, row=row.row)
            else:
                yield row.id, row.image, record_fields(row)

    return build_examples(rows(), source.root, builder, report)


def source_root(source: str) -> Path:
    """The folder a remembered source's image paths start from."""
    path = Path(source)
    return path if path.is_dir() else path.parent


def collection_examples(
    store: Store, name: str, source: str | None, builder: CaptionBuilder, report: ErrorReport
) -> list[Example]:
    """Examples from the payloads of an ingested collection.

    Args:
        source: the collection's remembered source (`services.states.load(name).source`),
            which relative image paths start from.

    Raises:
        CollectionNotFoundError: no such collection.
        SourceError: the collection has no remembered source.
    """
    physical = store.resolve(name)
    if not source:
        raise SourceError(
            f"collection {name!r} has no remembered source, so its image paths cannot be "
            "found: fine-tune from its manifest with --data instead"
        )
    root = source_root(source)

    def rows() -> Iterable[tuple[str, str | None, Fields]]:
        for point in store.scroll(physical):
            payload = dict(point.payload or {})
            record_id = str(payload.get("record_id") or point.id)
            image = payload.get("image")
            yield record_id, str(image) if image else None, payload_fields(payload)

    examples = build_examples(rows(), root, builder, report)
    return sorted(examples, key=lambda example: example.id)


def data_hash(examples: Iterable[Example]) -> str:
    """sha256 of the ids, image locations and captions: which data a model saw."""
    digest = hashlib.sha256()
    for example in sorted(examples, key=lambda item: item.id):
        line = [example.id, example.image.location, *example.captions]
        digest.update(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()
