"""Search filters as data, and their translation into one Qdrant filter.

Values given for one field are alternatives (any of them matches); different
fields must all match. Iconclass is hierarchical through `iconclass_path`, so
`25F` matches every notation below it. A year range matches items whose own
span overlaps it.
"""

from dataclasses import dataclass, field

from qdrant_client import models

from services.aat import normalise_aat
from services.errors import QueryError


@dataclass(frozen=True)
class GeoCircle:
    lat: float
    lon: float
    km: float


@dataclass(frozen=True)
class Filters:
    """What a search is narrowed to. Empty means the whole collection."""

    iconclass: tuple[str, ...] = ()
    aat: tuple[str, ...] = ()
    years: tuple[int | None, int | None] | None = None
    place: tuple[str, ...] = ()
    near: GeoCircle | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return self.to_qdrant() is None

    def to_qdrant(self) -> models.Filter | None:
        must: list[models.Condition] = []
        if self.iconclass:
            notations = [value.strip() for value in self.iconclass if value.strip()]
            must.append(_any_of("iconclass_path", notations))
        if self.aat:
            must.append(_any_of("aat", [aat_id(value) for value in self.aat]))
        if self.place:
            must.append(_any_of("place", list(self.place)))
        if self.years is not None:
            must.extend(_overlap(*self.years))
        if self.near is not None:
            must.append(
                models.FieldCondition(
                    key="geo",
                    geo_radius=models.GeoRadius(
                        center=models.GeoPoint(lat=self.near.lat, lon=self.near.lon),
                        radius=self.near.km * 1000.0,
                    ),
                )
            )
        for key, value in self.extra.items():
            must.append(
                models.FieldCondition(key=f"extra.{key}", match=models.MatchValue(value=value))
            )
        return models.Filter(must=must) if must else None


def aat_id(value: str) -> str:
    """`aat:300033618`, a Getty URI or the bare id: all the bare id the payload stores."""
    normalised = normalise_aat(value)
    if normalised is None:
        raise QueryError(f"{value!r} is not a Getty AAT id (for example 300033618).")
    return normalised


def _any_of(key: str, values: list[str]) -> models.FieldCondition:
    """One value is matched as such: Qdrant walks a single value's index entry faster
    (Iconclass + years over 1M points on Edge: 14-16 ms against 21-35 ms as MatchAny)."""
    if len(values) == 1:
        return models.FieldCondition(key=key, match=models.MatchValue(value=values[0]))
    return models.FieldCondition(key=key, match=models.MatchAny(any=values))


def _overlap(start: int | None, end: int | None) -> list[models.Condition]:
    """An item [year_start, year_end] overlaps [start, end]."""
    if start is not None and end is not None and start > end:
        raise QueryError(f"The year range {start}:{end} ends before it starts.")
    conditions: list[models.Condition] = []
    if end is not None:
        conditions.append(models.FieldCondition(key="year_start", range=models.Range(lte=end)))
    if start is not None:
        conditions.append(models.FieldCondition(key="year_end", range=models.Range(gte=start)))
    return conditions


def parse_years(text: str) -> tuple[int | None, int | None]:
    """`1600:1700`, `1600:` or `:1700` (negative years are BCE: `-500:-400`)."""
    if ":" not in text:
        raise QueryError(f"Years are given as START:END, for example 1600:1700 (got {text!r}).")
    start_text, end_text = text.split(":", 1)
    try:
        start = int(start_text) if start_text.strip() else None
        end = int(end_text) if end_text.strip() else None
    except ValueError as error:
        raise QueryError(f"Years must be whole numbers, as in 1600:1700 (got {text!r}).") from error
    if start is None and end is None:
        raise QueryError("A year range needs a start, an end or both.")
    return start, end


def parse_near(text: str) -> GeoCircle:
    """`LAT,LON,KM`, for example `52.37,4.89,25`."""
    parts = [part.strip() for part in text.split(",")]
    try:
        lat, lon, km = (float(part) for part in parts)
    except ValueError as error:
        raise QueryError(
            f"--near takes LAT,LON,KM, for example 52.37,4.89,25 (got {text!r})."
        ) from error
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and km > 0):
        raise QueryError(f"--near {text!r}: latitude, longitude or radius out of range.")
    return GeoCircle(lat, lon, km)


def parse_field(text: str) -> tuple[str, str]:
    """`KEY=VALUE` for a catalogue column kept under `extra`."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise QueryError(f"Expected KEY=VALUE (got {text!r}).")
    return key.strip(), value.strip()
