"""Translate qdrant-client models into Qdrant Edge requests, and Edge answers back.

The rest of vitrine speaks `qdrant_client.models` (filters, points, queries)
whatever the store behind it; the Edge engine has its own Python types for the
same concepts. Only what vitrine uses is translated; anything else is refused
with a clear error instead of being silently dropped.
"""

from collections.abc import Sequence
from typing import Any

import qdrant_edge as edge
from qdrant_client import models

from services.errors import VitrineError


class UnsupportedByEdge(VitrineError):
    """A request uses a Qdrant feature the embedded Edge store does not offer."""


def point_id(value: Any) -> Any:
    """Edge ids as strings (UUIDs) or integers, like the server returns them."""
    return value if isinstance(value, int) else str(value)


def to_filter(query_filter: models.Filter | None) -> edge.Filter | None:
    if query_filter is None:
        return None
    return edge.Filter(
        must=_conditions(query_filter.must),
        should=_conditions(query_filter.should),
        must_not=_conditions(query_filter.must_not),
    )


def as_list(conditions: Any) -> list[Any]:
    """A filter clause as a list: qdrant-client accepts one condition or a list, or None."""
    if conditions is None:
        return []
    return list(conditions) if isinstance(conditions, list) else [conditions]


def _conditions(conditions: Any) -> list[Any] | None:
    if conditions is None:
        return None
    return [_condition(condition) for condition in as_list(conditions)]


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return to_filter(condition)
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition({point_id(value) for value in condition.has_id})
    if isinstance(condition, models.IsEmptyCondition):
        return edge.IsEmptyCondition(condition.is_empty.key)
    if isinstance(condition, models.FieldCondition):
        return edge.FieldCondition(
            key=condition.key,
            match=_match(condition.match),
            range=_range(condition.range),
            geo_radius=_geo_radius(condition.geo_radius),
        )
    raise UnsupportedByEdge(f"The embedded store cannot filter on {type(condition).__name__}.")


def _match(match: Any) -> Any:
    if match is None:
        return None
    if isinstance(match, models.MatchValue):
        return edge.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        wanted: Any = list(match.any)
        return edge.MatchAny(wanted)
    if isinstance(match, models.MatchExcept):
        excluded: Any = list(match.except_)
        return edge.MatchExcept(excluded)
    raise UnsupportedByEdge(f"The embedded store cannot match with {type(match).__name__}.")


def _range(bounds: Any) -> edge.RangeFloat | None:
    if bounds is None:
        return None
    return edge.RangeFloat(gte=bounds.gte, gt=bounds.gt, lte=bounds.lte, lt=bounds.lt)


def _geo_radius(radius: models.GeoRadius | None) -> edge.GeoRadius | None:
    if radius is None:
        return None
    centre = edge.GeoPoint(lon=radius.center.lon, lat=radius.center.lat)
    return edge.GeoRadius(center=centre, radius=radius.radius)


def to_point(point: models.PointStruct) -> edge.Point:
    vector: Any = point.vector
    if not isinstance(vector, dict):
        raise UnsupportedByEdge("The embedded store keeps named vectors only.")
    return edge.Point(id=point_id(point.id), vector=vector, payload=dict(point.payload or {}))


def with_payload(value: bool | Sequence[str]) -> bool | list[str]:
    return value if isinstance(value, bool) else list(value)


def payload_selector(value: Any) -> bool | list[str]:
    """A request's `with_payload` (None meaning all, as in a QueryRequest)."""
    if value is None:
        return True
    if isinstance(value, bool | list):
        return with_payload(value)
    raise UnsupportedByEdge("The embedded store selects payload fields by a list of names only.")


def to_record(record: Any) -> models.Record:
    return models.Record(
        id=point_id(record.id),
        payload=record.payload,
        vector=_vectors(record.vector),
    )


def to_scored(point: Any) -> models.ScoredPoint:
    return models.ScoredPoint(
        id=point_id(point.id),
        version=point.version,
        score=point.score,
        payload=point.payload,
        vector=_vectors(point.vector),
    )


def _vectors(vector: Any) -> Any:
    """Named vectors as a dict of lists, or None when none were asked for."""
    if not vector:
        return None
    return {name: list(values) for name, values in vector.items()}
