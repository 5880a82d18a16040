"""Nearest neighbours of many items at once, with Qdrant's batched queries.

The image vectors of a page of items go to Qdrant in one `query_batch_points`
request, one nearest-neighbour query each. On a Qdrant server each query walks
the HNSW index, so a whole collection costs about items × neighbours index
look-ups; the embedded mode scores each query against every vector (brute
force), fine for thousands of items, slow for hundreds of thousands.

Qdrant's `search_matrix_pairs` with every point as the sample gives the same
neighbours in one request, but the embedded mode answers it with one search per
point filtered by an id list of the whole collection, whose cost grows with the
cube of the collection (1,000 points: 80 s, against 13 s for batched queries
on the same machine), and one request can neither report progress nor be
split; hence the batches.
"""

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import models

from services.errors import QueryError
from services.store import IMAGE_VECTOR, Store, point_id

BATCH = 256
"""Items per request (and per scroll page)."""
DEFAULT_NEIGHBOURS = 10
SCAN_SEARCH = models.SearchParams(hnsw_ef=128)
"""A narrower beam than one search's: a scan asks for few neighbours of every
item, and near-duplicates are the easiest neighbours to find."""
SCORE_SLACK = 1e-6
"""Asked-for minimum scores are lowered by this much: the embedded mode drops a
score equal to the threshold, a server keeps it; callers keep `>=` themselves."""

Progress = Callable[[int], None]
"""Called with the number of items just searched."""

Neighbourhood = list[tuple[str, float]]
"""One item's nearest other items, best first: (record id, cosine similarity)."""


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of `size` items in order (the last may be shorter)."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def image_vector(record: models.Record) -> npt.NDArray[np.float32]:
    """The image vector a point was fetched with."""
    vector = record.vector
    found = vector.get(IMAGE_VECTOR) if isinstance(vector, dict) else vector
    values = np.asarray(found if isinstance(found, list) else [], dtype=np.float32)
    if values.ndim != 1 or not values.size:
        raise QueryError(f"Point {record.id} has no image vector.")
    return values


def record_id_of(record: models.Record | models.ScoredPoint) -> str:
    """The manifest id of a point (its point id where the payload lacks one)."""
    return str((record.payload or {}).get("record_id", record.id))


def _search(
    store: Store,
    physical: str,
    records: Sequence[models.Record],
    *,
    neighbours: int,
    min_score: float | None,
) -> list[Neighbourhood]:
    """For each record, up to `neighbours` nearest other items: (record id, score)."""
    requests = [
        models.QueryRequest(
            query=models.NearestQuery(nearest=image_vector(record).tolist()),
            using=IMAGE_VECTOR,
            limit=neighbours + 1,  # the point itself comes back too
            score_threshold=None if min_score is None else min_score - SCORE_SLACK,
            with_payload=["record_id"],
            params=SCAN_SEARCH,
        )
        for record in records
    ]
    with warnings.catch_warnings():
        # The local mode warns that it searches exactly, whatever the beam; so be it.
        warnings.simplefilter("ignore", UserWarning)
        answers = store.call(store.client.query_batch_points, physical, requests=requests)
    return [
        [
            (record_id_of(point), float(point.score))
            for point in answer.points
            if point.id != record.id
        ][:neighbours]
        for record, answer in zip(records, answers, strict=True)
    ]


def scan_neighbours(
    store: Store,
    collection: str,
    *,
    neighbours: int = DEFAULT_NEIGHBOURS,
    min_score: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Neighbourhood]:
    """Every item's nearest other items, best first, by record id.

    Args:
        neighbours: at most this many per item.
        min_score: leave out neighbours below this similarity.
        progress: called after each batch with the number of items searched.
    """
    physical = store.resolve(collection)
    result: dict[str, Neighbourhood] = {}
    pages = store.scroll(physical, payload=["record_id"], with_vectors=True, page=BATCH)
    for page in chunks(pages, BATCH):
        found = _search(store, physical, page, neighbours=neighbours, min_score=min_score)
        result.update(zip(map(record_id_of, page), found, strict=True))
        if progress:
            progress(len(page))
    return result


def neighbours_of(
    store: Store, collection: str, record_ids: Sequence[str], *, neighbours: int
) -> dict[str, Neighbourhood]:
    """The nearest other items of some items, best first, by record id (missing ids left out)."""
    physical = store.resolve(collection)
    result: dict[str, Neighbourhood] = {}
    for chunk in chunks(record_ids, BATCH):
        points = [point_id(collection, rid) for rid in chunk]
        records = store.fetch(physical, points, with_vectors=True)
        found = _search(store, physical, records, neighbours=neighbours, min_score=None)
        result.update(zip(map(record_id_of, records), found, strict=True))
    return result


def image_vectors(
    store: Store, collection: str, record_ids: Iterable[str]
) -> dict[str, npt.NDArray[np.float32]]:
    """record id -> unit image vector, for the ids the collection has."""
    physical = store.resolve(collection)
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    for chunk in chunks(record_ids, BATCH):
        points = [point_id(collection, rid) for rid in chunk]
        for point in store.fetch(physical, points, with_vectors=True):
            vector = image_vector(point)
            vectors[record_id_of(point)] = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return vectors


def all_record_ids(store: Store, collection: str) -> list[str]:
    """Every record id in a collection."""
    physical = store.resolve(collection)
    return [record_id_of(point) for point in store.scroll(physical, payload=["record_id"])]
