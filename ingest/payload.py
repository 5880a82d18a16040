"""A record's Qdrant payload: normalised metadata plus what ingest knows about it.

The payload keeps the same keys for every record (None where a value is
missing) so the schema and the payload indexes stay stable; only `geo` is left
out when a record has no usable coordinates, because a geo index rejects None.
"""

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ingest.dates import year_range
from ingest.records import Record
from services.aat import normalise_aat
from services.iconclass_terms import labels, notation_path, rejoin_notations

# Keys that change without the catalogue changing: left out of the fingerprint.
VOLATILE_KEYS = frozenset({"sha256", "model_version", "ingested_at", "fingerprint"})
# Extra keys the payload promotes to its own fields, so they are not kept twice.
_PROMOTED_EXTRA = ("aat_labels", "place_all")


@dataclass(frozen=True)
class PayloadWarning:
    """Something in a record that the payload could not use, and why.

    `kind` is one of "date", "iconclass", "aat", "geo"; str() is the message.
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def build_payload(
    record: Record,
    *,
    collection: str,
    image: str | None,
    sha256: str | None,
    model_version: str,
    ingested_at: str,
    lang: str = "en",
) -> tuple[dict[str, Any], list[PayloadWarning]]:
    """The payload of `record` and the warnings about values it had to drop.

    Iconclass labels are in `lang` (ConfigError when the package has none in it).

    >>> payload, warnings = build_payload(
    ...     Record(id="a1", date="490-480 BC", aat=("aat:300033618", "oops")),
    ...     collection="vases", image=None, sha256=None, model_version="m1",
    ...     ingested_at="2024-01-01T00:00:00Z",
    ... )
    >>> payload["year_start"], payload["aat"], [str(w) for w in warnings]
    (-490, ['300033618'], ["invalid AAT id 'oops'"])
    """
    warnings: list[PayloadWarning] = []
    notations = rejoin_notations(record.iconclass)
    paths, iconclass_labels = _iconclass(notations, lang, warnings)
    year_start, year_end = year_range(record.date, record.year_start, record.year_end)
    if record.date and record.date.strip() and year_start is None and year_end is None:
        warnings.append(PayloadWarning("date", f"unparseable date '{record.date}'"))
    payload: dict[str, Any] = {
        "record_id": record.id,
        "collection": record.collection or collection,
        "title": record.title,
        "caption": record.caption,
        "image": image,
        "url": record.url,
        "license": record.license,
        "iconclass": notations,
        "iconclass_path": sorted(paths),
        # Each notation's path starts at its top-level digit (both, for a combination).
        "iconclass_top": sorted(entry for entry in paths if len(entry) == 1),
        "iconclass_labels": iconclass_labels,
        "aat": _aat(record.aat, warnings),
        "aat_labels": _strings(record.extra.get("aat_labels")),
        "year_start": year_start,
        "year_end": year_end,
        "date": record.date,
        "place": _places(record),
    }
    geo = _geo(record.lat, record.lon, warnings)
    if geo is not None:
        payload["geo"] = geo
    payload.update(
        sha256=sha256,
        model_version=model_version,
        ingested_at=ingested_at,
        extra={key: value for key, value in record.extra.items() if key not in _PROMOTED_EXTRA},
    )
    return payload, warnings


def record_fingerprint(payload: dict[str, Any]) -> str:
    """sha256 (hex) of the payload's catalogue content, to spot metadata-only changes.

    The image digest, model version, ingest time and a stored fingerprint are
    left out, so the same catalogue row always gives the same fingerprint.
    """
    content = {key: value for key, value in payload.items() if key not in VOLATILE_KEYS}
    text = json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iconclass(
    notations: list[str], lang: str, warnings: list[PayloadWarning]
) -> tuple[set[str], list[str]]:
    """Union of the notations' paths, and their labels where the package has one."""
    paths: set[str] = set()
    found_labels: list[str] = []
    for notation in notations:
        path = notation_path(notation)
        if not path:
            warnings.append(PayloadWarning("iconclass", f"invalid Iconclass notation '{notation}'"))
            continue
        paths.update(path)
        label = labels(notation, lang)
        if label is not None:
            found_labels.append(label)
    return paths, found_labels


def _aat(values: tuple[str, ...], warnings: list[PayloadWarning]) -> list[str]:
    """Bare AAT ids, each once, in the order given."""
    ids: list[str] = []
    for value in values:
        if not value.strip():
            continue
        aat_id = normalise_aat(value)
        if aat_id is None:
            warnings.append(PayloadWarning("aat", f"invalid AAT id '{value}'"))
        elif aat_id not in ids:
            ids.append(aat_id)
    return ids


def _places(record: Record) -> list[str]:
    """All places: the source's full list when it kept one in extra, else `place` split on `;`."""
    every = _strings(record.extra.get("place_all"))
    if every:
        return every
    return _strings(record.place)


def _strings(value: Any) -> list[str]:
    """A list of non-empty strings from a list, or from `;`-separated text."""
    if value is None:
        return []
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return []
    return [text for item in items if (text := str(item).strip())]


def _geo(
    lat: float | None, lon: float | None, warnings: list[PayloadWarning]
) -> dict[str, float] | None:
    """{"lat", "lon"} when both are given and on the globe; a warning otherwise."""
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        warnings.append(PayloadWarning("geo", f"incomplete coordinates lat={lat} lon={lon}"))
        return None
    on_globe = math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180
    if not on_globe:
        warnings.append(PayloadWarning("geo", f"coordinates out of range lat={lat} lon={lon}"))
        return None
    return {"lat": lat, "lon": lon}
