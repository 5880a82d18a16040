"""Re-embed a collection with another model version, without downtime.

The new physical collection (`prints__<new version>`) is built beside the one
the alias points at, from the original images (paths resolved against the
collection's remembered source) and the payloads already stored (scrolled from
the old collection, not re-parsed from the catalogue). It is then checked:
the same number of points, and a sample of items that each find themselves
first by image vector. Only then is the alias switched, in one atomic call;
the old collection stays for `vitrine collections rollback`.

Resumable: a point already in the new collection with the new model version
and the same image digest is not embedded again, so an interrupted run picks
up where it stopped, and point ids (uuid5 of alias and record id) mean no
duplicates.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from qdrant_client import models

from ingest.image_refs import ImageError, ImageRef, resolve_ref
from ingest.images import ImageLoader
from ingest.mapping import ColumnMapping
from ingest.sources import open_source
from services.embedder import Embedder
from services.errors import ModelUnavailableError, VitrineError
from services.models import HF_HUB, LOCAL_DIR, ModelSpec
from services.store import CAPTION_VECTOR, IMAGE_VECTOR, new_point, physical_name, version_of
from services.versions import keep_versions, switch_alias
from services.wiring import Services

PAGE = 256
SAMPLE = 8
Progress = Callable[[int, int], None]
Log = Callable[[str], None]


class ReembedCheckError(VitrineError):
    """The new collection failed its checks; the alias was left where it was."""


@dataclass
class ReembedSummary:
    collection: str
    from_version: str
    to_version: str
    points: int = 0
    embedded: int = 0
    reused: int = 0
    failed: int = 0
    switched: bool = False
    deleted: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(services: Services, model: str) -> ModelSpec:
    """A model version known to the catalogue or registry, else a model spec."""
    try:
        return services.catalog.spec_for(model)
    except ModelUnavailableError:
        if model.startswith((LOCAL_DIR, HF_HUB)):
            return ModelSpec(model)
        return ModelSpec(model, services.settings.pretrained)


def source_root(services: Services, alias: str) -> Path:
    """The folder image paths of `alias` are relative to, from its remembered source."""
    state = services.states.load(alias)
    if state is None or not state.source:
        raise VitrineError(
            f"Collection {alias!r} has no remembered source, so its images cannot be found "
            f"again. Ingest it once with `vitrine ingest SOURCE --collection {alias}`."
        )
    return open_source(Path(state.source), ColumnMapping.model_validate(state.mapping)).root


def reembed_collection(
    services: Services,
    alias: str,
    model: str,
    *,
    keep: int = 1,
    job: str | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> ReembedSummary:
    """Build, check and switch to the collection for `model`; keep `keep` old versions.

    Raises:
        ReembedCheckError: images failed or the checks did not pass (alias unchanged).
        VitrineError: unknown collection or model, no remembered source.
    """
    started = time.perf_counter()
    say = log or (lambda message: None)
    store = services.store
    old = store.resolve(alias)
    embedder = services.embedder(resolve_model(services, model))
    new = physical_name(alias, embedder.version)
    summary = ReembedSummary(alias, version_of(old), embedder.version)
    if old == new:
        say(f"{alias} already points at {new}; nothing to switch")
        summary.points = store.count(new)
        return summary
    store.create_physical(new, embedder.dim)
    root = source_root(services, alias)
    _Builder(services, alias, embedder, root, summary, progress).build(old, new)
    store.optimize(new)
    say(
        f"built {new}: {summary.embedded} embedded, {summary.reused} already there, "
        f"{summary.failed} failed"
    )
    _check(services, old, new, summary)
    switch_alias(services, alias, new, reason=f"re-embed with {embedder.version}", job=job)
    summary.switched = True
    say(f"alias switched: {alias} -> {new} (was {old})")
    summary.deleted = keep_versions(services, alias, keep)
    if summary.deleted:
        say(f"deleted old versions beyond --keep {keep}: {', '.join(summary.deleted)}")
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


class _Builder:
    """Copies payloads from the old collection and embeds the images anew."""

    def __init__(
        self,
        services: Services,
        alias: str,
        embedder: Embedder,
        root: Path,
        summary: ReembedSummary,
        progress: Progress | None,
    ) -> None:
        self.services = services
        self.alias = alias
        self.embedder = embedder
        self.root = root
        self.summary = summary
        self.progress = progress or (lambda done, total: None)
        self.problems: list[str] = []

    def build(self, old: str, new: str) -> None:
        store = self.services.store
        total = store.count(old)
        self.summary.points = total
        done_before = store.stored_state(new, ("sha256", "model_version"))
        old_ids: set[str] = set()
        done = 0
        loader = ImageLoader.from_settings(
            self.services.settings, self.embedder.loaded.preprocess, self.embedder.image_size
        )
        with loader:
            for page in _pages(store.scroll(old, page=PAGE), PAGE):
                todo = []
                for record in page:
                    pid = str(record.id)
                    old_ids.add(pid)
                    payload = dict(record.payload or {})
                    there = done_before.get(pid)
                    if (
                        there
                        and there.get("sha256") == payload.get("sha256")
                        and there.get("model_version") == self.embedder.version
                    ):
                        self.summary.reused += 1
                    else:
                        todo.append((pid, payload))
                done += len(page) - len(todo)
                self.progress(done, total)
                done = self._embed(loader, todo, new, done, total)
        stale = sorted(set(done_before) - old_ids)
        store.delete(new, stale)  # items pruned from the old collection since a failed run

    def _embed(
        self,
        loader: ImageLoader,
        todo: list[tuple[str, dict[str, Any]]],
        new: str,
        done: int,
        total: int,
    ) -> int:
        refs: list[tuple[int, ImageRef]] = []
        for index, (_, payload) in enumerate(todo):
            try:
                refs.append((index, resolve_ref(str(payload.get("image") or ""), self.root)))
            except ImageError as error:
                self._failed(payload, error.reason)
                done += 1
        batch: list[tuple[str, dict[str, Any], torch.Tensor]] = []
        for decoded in loader.load(refs):
            pid, payload = todo[decoded.index]
            if decoded.pixels is None:
                self._failed(payload, decoded.error or "could not be decoded")
                done += 1
                continue
            payload["sha256"] = decoded.sha256 or payload.get("sha256")
            batch.append((pid, payload, decoded.pixels))
            if len(batch) >= self.embedder.batch_size:
                done += self._write(batch, new)
                self.progress(done, total)
                batch = []
        done += self._write(batch, new)
        self.progress(done, total)
        return done

    def _failed(self, payload: dict[str, Any], reason: str) -> None:
        self.summary.failed += 1
        self.problems.append(f"{payload.get('record_id')}: {reason}")

    def _write(self, batch: list[tuple[str, dict[str, Any], torch.Tensor]], new: str) -> int:
        if not batch:
            return 0
        images = self.embedder.encode_pixels(torch.stack([pixels for _, _, pixels in batch]))
        captioned = [(pid, p["caption"]) for pid, p, _ in batch if p.get("caption")]
        texts = self.embedder.encode_texts([caption for _, caption in captioned])
        captions = {pid: vector.tolist() for (pid, _), vector in zip(captioned, texts, strict=True)}
        points = []
        for (pid, payload, _), vector in zip(batch, images, strict=True):
            payload["model_version"] = self.embedder.version
            vectors: dict[str, Any] = {IMAGE_VECTOR: vector.tolist()}
            if pid in captions:
                vectors[CAPTION_VECTOR] = captions[pid]
            points.append(new_point(pid, vectors, payload))
        self.services.store.upsert(new, points)
        self.summary.embedded += len(points)
        return len(points)


def _check(services: Services, old: str, new: str, summary: ReembedSummary) -> None:
    """Same point count as the old collection; sampled items find themselves first."""
    store = services.store
    old_count, new_count = store.count(old), store.count(new)
    if summary.failed or old_count != new_count:
        raise ReembedCheckError(
            f"{new} has {new_count} points, {old} has {old_count} ({summary.failed} images "
            f"could not be read); the alias still points at {old}. Fix or remove those images "
            "(`vitrine ingest` with --prune), then run the re-embed again: it resumes."
        )
    sample = []
    for record in store.scroll(new, payload=False, with_vectors=True, page=SAMPLE):
        sample.append(record)
        if len(sample) >= SAMPLE:
            break
    for record in sample:
        vector = cast(dict[str, Any], record.vector)[IMAGE_VECTOR]
        hits = store.query(new, vector, query_filter=None, limit=1)
        if not hits or (str(hits[0].id) != str(record.id) and hits[0].score < 0.9999):
            raise ReembedCheckError(
                f"In {new}, item {record.id} does not find itself first by its image; the "
                f"alias still points at {old}. The new collection may be damaged: run the "
                "re-embed again."
            )


def _pages(records: Any, size: int) -> Any:
    page: list[models.Record] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page
