"""One ingest run: records from a source into the collection behind an alias.

Idempotent and resumable: the point id is uuid5(collection, record id); an item
whose image bytes (sha256), model version and metadata fingerprint are already
stored is not embedded again, so re-running after an interruption carries on
where it stopped. Every problem is written to the error report and counted;
one bad row or image never stops the run.
"""

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, cast

import torch

from ingest.image_refs import ImageError, ImageRef, resolve_ref
from ingest.images import ImageLoader
from ingest.payload import build_payload, record_fingerprint
from ingest.records import Record, RowProblem
from ingest.report import ErrorReport
from ingest.sources import Source
from services.collection_state import RunCounts, utc_now
from services.embedder import Embedder, Vectors
from services.store import CAPTION_VECTOR, IMAGE_VECTOR, Store, new_point, point_id
from services.thumbnails import write_thumbnail

CHUNK = 512
STATE_FIELDS = ("record_id", "sha256", "model_version", "fingerprint")


class IngestSummary(RunCounts):
    """What a run did; `--json` prints it."""

    collection: str

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass
class _Item:
    pid: str
    record: Record
    ref: ImageRef
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Encoded:
    """One batch's vectors, on their way from a lane to the store."""

    items: list[_Item]
    images: Vectors
    captions: dict[str, list[float]]


Progress = Callable[[int], None]


class Ingest:
    """Wires a source, a store, a model and an image loader for one run."""

    def __init__(
        self,
        *,
        collection: str,
        store: Store,
        embedder: Embedder,
        loader: ImageLoader,
        report: ErrorReport,
        lang: str = "en",
        progress: Progress | None = None,
        thumbnails: Path | None = None,
    ) -> None:
        """`thumbnails`: the data folder to write thumbnails into (None: none)."""
        self.collection = collection
        self.store = store
        self.embedder = embedder
        self.loader = loader
        self.report = report
        self.lang = lang
        self.progress = progress or (lambda count: None)
        self.thumbnails = thumbnails

    def run(self, source: Source, *, prune: bool = False) -> IngestSummary:
        started = time.perf_counter()
        summary = IngestSummary(collection=self.collection)
        physical = self.store.ensure_collection(
            self.collection, self.embedder.version, self.embedder.dim
        )
        stored = self.store.stored_state(physical, STATE_FIELDS)
        seen: set[str] = set()
        for chunk in _chunks(source.records(), CHUNK):
            items = self._admit(chunk, source, summary, seen)
            self._sort(items, stored, physical, summary)
        missing = sorted(set(stored) - seen)
        summary.missing = len(missing)
        if prune:
            self.store.delete(physical, missing)
            summary.pruned = len(missing)
        else:
            for pid in missing:
                record_id = stored[pid].get("record_id")
                self.report.add(
                    "missing", "in the collection but no longer in the source", record_id=record_id
                )
        summary.seconds = round(time.perf_counter() - started, 3)
        summary.report = str(self.report.path) if self.report.written else None
        return summary

    def _admit(
        self,
        chunk: list[Record | RowProblem],
        source: Source,
        summary: IngestSummary,
        seen: set[str],
    ) -> list[_Item]:
        """Records with a usable image reference; problems go to the report."""
        items = []
        for entry in chunk:
            if isinstance(entry, RowProblem):
                summary.failed += 1
                self.report.add("row", entry.reason, record_id=entry.record_id, row=entry.row)
                continue
            summary.seen += 1
            pid = point_id(self.collection, entry.id)
            seen.add(pid)
            if not entry.image:
                summary.failed += 1
                self.report.add("image", "no image given", record_id=entry.id)
                continue
            try:
                items.append(_Item(pid, entry, resolve_ref(entry.image, source.root)))
            except ImageError as error:
                summary.failed += 1
                self.report.add("image", error.reason, record_id=entry.id, image=entry.image)
        self.progress(len(chunk) - len(items))
        return items

    def _sort(
        self,
        items: list[_Item],
        stored: dict[str, dict[str, Any]],
        physical: str,
        summary: IngestSummary,
    ) -> None:
        """Hash images, then skip, update metadata, or embed each item."""
        to_embed: list[_Item] = []
        to_update: list[_Item] = []
        hashes = dict(self.loader.hash_only((index, item.ref) for index, item in enumerate(items)))
        for index, item in enumerate(items):
            digest = hashes[index]
            if isinstance(digest, ImageError):
                summary.failed += 1
                self.report.add(
                    "image", digest.reason, record_id=item.record.id, image=item.record.image
                )
                self.progress(1)
                continue
            item.payload = self._payload(item.record, digest, summary)
            old = stored.get(item.pid)
            if (
                old is None
                or old.get("sha256") != digest
                or old.get("model_version") != self.embedder.version
            ):
                to_embed.append(item)
            elif old.get("fingerprint") != item.payload["fingerprint"]:
                to_update.append(item)
            else:
                summary.unchanged += 1
                self.progress(1)
        self._update_metadata(to_update, physical, summary)
        self._embed(to_embed, physical, summary)

    def _payload(self, record: Record, digest: str, summary: IngestSummary) -> dict[str, Any]:
        payload, warnings = build_payload(
            record,
            collection=self.collection,
            image=record.image,
            sha256=digest,
            model_version=self.embedder.version,
            ingested_at=utc_now(),
            lang=self.lang,
        )
        for warning in warnings:
            if warning.kind == "date":
                summary.date_unparsed += 1
                self.report.add("date", warning.message, record_id=record.id)
            else:
                self.report.add("metadata", warning.message, record_id=record.id)
        payload["fingerprint"] = record_fingerprint(payload)
        return payload

    def _caption_vectors(self, items: list[_Item]) -> dict[str, list[float]]:
        captioned = [item for item in items if item.record.caption]
        vectors = self.embedder.encode_texts([item.record.caption or "" for item in captioned])
        return {item.pid: vector.tolist() for item, vector in zip(captioned, vectors, strict=True)}

    def _update_metadata(self, items: list[_Item], physical: str, summary: IngestSummary) -> None:
        """Same image, new metadata: keep the image vector, re-embed the caption."""
        if not items:
            return
        image_vectors: dict[str, Any] = {
            str(point.id): cast(dict[str, Any], point.vector)[IMAGE_VECTOR]
            for point in self.store.fetch(physical, [item.pid for item in items], with_vectors=True)
        }
        captions = self._caption_vectors(items)
        points = [
            new_point(
                pid=item.pid,
                vectors=_vectors(image_vectors[item.pid], captions.get(item.pid)),
                payload=item.payload,
            )
            for item in items
        ]
        self.store.upsert(physical, points)
        summary.updated += len(items)
        self.progress(len(items))

    def _embed(self, items: list[_Item], physical: str, summary: IngestSummary) -> None:
        """Encode batches in the embedder's lanes while the next images decode.

        Vectors are written here, in the calling thread, as each batch finishes:
        the store and the progress callback see one thread, in order.
        """
        if not items:
            return
        with (
            self.embedder.lanes() as lanes,
            ThreadPoolExecutor(lanes, thread_name_prefix="vitrine-model") as model,
        ):
            running: deque[Future[_Encoded]] = deque()
            for batch in self._batches(items, summary):
                running.append(model.submit(self._encode, batch))
                while len(running) > lanes:  # one batch waits ready for a free lane
                    self._store(running.popleft().result(), physical, summary)
            while running:
                self._store(running.popleft().result(), physical, summary)

    def _batches(
        self, items: list[_Item], summary: IngestSummary
    ) -> Iterator[list[tuple[_Item, torch.Tensor]]]:
        """Decoded images in batches; a failure is reported, a thumbnail written."""
        batch: list[tuple[_Item, torch.Tensor]] = []
        for decoded in self.loader.load((index, item.ref) for index, item in enumerate(items)):
            item = items[decoded.index]
            if decoded.pixels is None:
                summary.failed += 1
                reason = decoded.error or "could not be decoded"
                self.report.add("image", reason, record_id=item.record.id, image=item.record.image)
                self.progress(1)
                continue
            if self.thumbnails is not None and decoded.thumbnail is not None:
                write_thumbnail(self.thumbnails, self.collection, item.pid, decoded.thumbnail)
            batch.append((item, decoded.pixels))
            if len(batch) >= self.embedder.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _encode(self, batch: list[tuple[_Item, torch.Tensor]]) -> _Encoded:
        items = [item for item, _ in batch]
        images = self.embedder.encode_pixels(torch.stack([pixels for _, pixels in batch]))
        return _Encoded(items, images, self._caption_vectors(items))

    def _store(self, encoded: _Encoded, physical: str, summary: IngestSummary) -> None:
        points = [
            new_point(
                pid=item.pid,
                vectors=_vectors(vector.tolist(), encoded.captions.get(item.pid)),
                payload=item.payload,
            )
            for item, vector in zip(encoded.items, encoded.images, strict=True)
        ]
        self.store.upsert(physical, points)
        summary.embedded += len(points)
        self.progress(len(points))


def _vectors(image: list[float], caption: list[float] | None) -> dict[str, Any]:
    return {IMAGE_VECTOR: image} | ({CAPTION_VECTOR: caption} if caption is not None else {})


def _chunks(entries: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(entries)
    while chunk := list(islice(iterator, size)):
        yield chunk
