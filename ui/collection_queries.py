"""Cached read-only queries behind the sidebar and the item view.

Facet counts are disjunctive: a field's counts use every filter except its
own, so the other values of that field stay visible as alternatives (values of
one field are any-of). Answers are cached briefly, keyed by store location and
physical collection (a new model version swapped in behind an alias is a new
physical collection, so a swap is never served from a stale cache).
"""

from dataclasses import replace
from typing import Any

import streamlit as st
from qdrant_client import models

from services.filters import Filters
from services.store import Store, point_id
from services.wiring import Services

TTL_SECONDS = 120
ALL_VALUES = 100_000
FILTER_FIELD = {
    "iconclass_top": "iconclass",
    "iconclass_path": "iconclass",
    "aat": "aat",
    "place": "place",
}


def _with_values(filters: Filters, field: str, values: tuple[str, ...]) -> Filters:
    """`filters` with the filter that `field` (a payload field) answers set to `values`."""
    target = FILTER_FIELD[field]
    if target == "iconclass":
        return replace(filters, iconclass=values)
    if target == "aat":
        return replace(filters, aat=values)
    return replace(filters, place=values)


def _without(filters: Filters, field: str) -> Filters:
    return _with_values(filters, field, ())


@st.cache_data(ttl=TTL_SECONDS, max_entries=2048, show_spinner=False)
def _facet(
    location: str,
    physical: str,
    field: str,
    filter_key: str,
    limit: int,
    _store: Store,
    _filter: models.Filter | None,
) -> list[tuple[str, int]]:
    return _store.facet(physical, field, _filter, limit=limit)


@st.cache_data(ttl=TTL_SECONDS, max_entries=2048, show_spinner=False)
def _count(
    location: str, physical: str, filter_key: str, _store: Store, _filter: models.Filter | None
) -> int:
    return _store.count(physical, _filter)


def facet_counts(
    services: Services, physical: str, field: str, filters: Filters, limit: int
) -> dict[str, int]:
    """The `limit` most frequent values of `field` under every filter but its own."""
    others = _without(filters, field)
    store = services.store
    return dict(
        _facet(store.location, physical, field, repr(others), limit, store, others.to_qdrant())
    )


def value_count(services: Services, physical: str, field: str, value: str, filters: Filters) -> int:
    """Items that `value` of `field` would match under every other filter."""
    narrowed = _with_values(filters, field, (value,))
    return match_count(services, physical, narrowed)


def match_count(services: Services, physical: str, filters: Filters) -> int:
    """Items matching `filters` (a search ranks exactly these)."""
    store = services.store
    return _count(store.location, physical, repr(filters), store, filters.to_qdrant())


def year_bounds(services: Services, physical: str) -> tuple[int, int] | None:
    """The earliest year_start and latest year_end in the collection, if any item is dated."""
    store = services.store
    starts = _facet(store.location, physical, "year_start", "", ALL_VALUES, store, None)
    ends = _facet(store.location, physical, "year_end", "", ALL_VALUES, store, None)
    if not starts or not ends:
        return None
    return min(int(value) for value, _ in starts), max(int(value) for value, _ in ends)


def collection_notations(services: Services, physical: str) -> dict[str, int]:
    """Every Iconclass notation in the collection, ancestors included, with its item count."""
    store = services.store
    return dict(_facet(store.location, physical, "iconclass_path", "", ALL_VALUES, store, None))


def fetch_item(services: Services, collection: str, record_id: str) -> dict[str, Any] | None:
    """The payload of one item by its record id, or None when it is not there."""
    physical = services.store.resolve(collection)
    records = services.store.fetch(physical, [point_id(collection, record_id)])
    return dict(records[0].payload or {}) if records else None


@st.cache_data(ttl=TTL_SECONDS, max_entries=4096, show_spinner=False)
def _aat_label(location: str, physical: str, aat: str, _store: Store) -> str:
    condition = models.Filter(
        must=[models.FieldCondition(key="aat", match=models.MatchValue(value=aat))]
    )
    for record in _store.scroll(
        physical, payload=["aat", "aat_labels"], page=1, query_filter=condition
    ):
        payload = record.payload or {}
        ids, labels = list(payload.get("aat") or []), list(payload.get("aat_labels") or [])
        if aat in ids and len(labels) == len(ids):
            return str(labels[ids.index(aat)])
        return ""
    return ""


def aat_label(services: Services, physical: str, aat: str) -> str:
    """The label stored with an AAT id in this collection (empty if none was given)."""
    store = services.store
    return _aat_label(store.location, physical, aat, store)
