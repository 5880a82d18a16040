"""Search a collection by text, example image, stored item, or a weighted mix.

The query side of the flow: texts and images are embedded with the model the
collection was built with, combined into one query, and answered by Qdrant's
`query_points` (nearest neighbours, or `recommend` when there are items to be
like or texts to be unlike). Facet counts come from Qdrant's facet API.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from qdrant_client import models

from services.embedder import Embedder, Vectors
from services.errors import QueryError
from services.filters import Filters
from services.store import Store, point_id, version_of

FACET_FIELDS = ("iconclass_top", "aat", "place")


@dataclass(frozen=True)
class SearchRequest:
    """One search. At least one of `text`, `image` or `like` is needed."""

    collection: str
    text: str | None = None
    image: Image.Image | None = None
    like: tuple[str, ...] = ()
    text_weight: float = 0.5
    negative: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)
    limit: int = 20
    offset: int = 0
    min_score: float | None = None
    facets: bool = False

    def validate(self) -> None:
        if not (self.text and self.text.strip()) and self.image is None and not self.like:
            raise QueryError("Give something to search for: a text, an image or an item (like).")
        if not 0.0 <= self.text_weight <= 1.0:
            raise QueryError(f"The text weight must lie between 0 and 1 (got {self.text_weight}).")
        if self.limit < 1 or self.offset < 0:
            raise QueryError("limit must be at least 1 and offset not negative.")


@dataclass(frozen=True)
class Hit:
    """One result: the record id from the manifest, its score and its payload."""

    id: str
    score: float
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "payload": self.payload}


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]


def combine(
    text_vector: Vectors | None, image_vector: Vectors | None, text_weight: float
) -> Vectors | None:
    """Weighted sum of a text and an image query vector, renormalised."""
    if text_vector is None:
        return image_vector
    if image_vector is None:
        return text_vector
    mixed = text_weight * text_vector + (1.0 - text_weight) * image_vector
    norm = float(np.linalg.norm(mixed))
    return (mixed / norm).astype(np.float32) if norm > 0 else mixed


class Searcher:
    """Answers SearchRequests against one store; the model is loaded on first need."""

    def __init__(self, store: Store, embedder_for: Callable[[str], Embedder]) -> None:
        """`embedder_for(version)` gives the model a physical collection was built with."""
        self.store = store
        self.embedder_for = embedder_for

    def search(self, request: SearchRequest) -> SearchResult:
        request.validate()
        physical = self.store.resolve(request.collection)
        query = self._query(request, physical)
        query_filter = request.filters.to_qdrant()
        points = self.store.query(
            physical,
            query,
            query_filter=query_filter,
            limit=request.limit,
            offset=request.offset,
            min_score=request.min_score,
        )
        hits = [
            Hit(
                id=str((point.payload or {}).get("record_id", point.id)),
                score=float(point.score),
                payload=dict(point.payload or {}),
            )
            for point in points
        ]
        facets = self.facets(physical, query_filter) if request.facets else {}
        return SearchResult(hits=hits, facets=facets)

    def facets(
        self, physical: str, query_filter: models.Filter | None
    ) -> dict[str, list[tuple[str, int]]]:
        """Counts of Iconclass top levels, AAT ids and places among the filtered items."""
        return {key: self.store.facet(physical, key, query_filter) for key in FACET_FIELDS}

    def _query(self, request: SearchRequest, physical: str) -> Any:
        embedder = self.embedder_for(version_of(physical))
        text_vector = (
            embedder.encode_texts([request.text])[0]
            if request.text and request.text.strip()
            else None
        )
        image_vector = (
            embedder.encode_images([request.image])[0] if request.image is not None else None
        )
        positive: list[Any] = [
            self._like_id(request.collection, physical, item) for item in request.like
        ]
        mixed = combine(text_vector, image_vector, request.text_weight)
        if mixed is not None:
            positive.append(mixed.tolist())
        negative = [vector.tolist() for vector in embedder.encode_texts(list(request.negative))]
        if len(positive) == 1 and not negative:
            return models.NearestQuery(nearest=positive[0])
        return models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=positive,
                negative=negative,
                strategy=models.RecommendStrategy.AVERAGE_VECTOR,
            )
        )

    def _like_id(self, alias: str, physical: str, record_id: str) -> str:
        pid = point_id(alias, record_id)
        if not self.store.fetch(physical, [pid]):
            raise QueryError(f"There is no item {record_id!r} in {alias!r}.")
        return pid
