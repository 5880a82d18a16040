"""The typed record every source produces, and the problems it may carry."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    """One catalogue entry, in our vocabulary, before normalisation.

    `image` is a path relative to the source root, an absolute path inside it,
    or an http(s) URL. List fields are already split on their separators.
    """

    id: str
    image: str | None = None
    caption: str | None = None
    title: str | None = None
    iconclass: tuple[str, ...] = ()
    aat: tuple[str, ...] = ()
    date: str | None = None
    year_start: int | None = None
    year_end: int | None = None
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    collection: str | None = None
    url: str | None = None
    license: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowProblem:
    """A row that could not become a record, with where and why."""

    row: int
    reason: str
    record_id: str | None = None
