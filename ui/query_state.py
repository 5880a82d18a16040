"""The search as it lives in the URL, so a search can be bookmarked and shared.

`?collection=prints&q=lion&iconclass=25F&years=1550:1650` plus `aat`, `place`,
`not` (negative terms), `like=<item id>`, `page` and `item` (the open item
view). Lists repeat their parameter (`place=Leiden&place=Amsterdam`).
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from services.errors import QueryError
from services.filters import Filters, aat_id, parse_years

LIST_PARAMS = ("iconclass", "aat", "place", "not")
Years = tuple[int | None, int | None]


@dataclass(frozen=True)
class SearchState:
    """Everything needed to repeat a search, except an uploaded image."""

    collection: str | None = None
    q: str = ""
    iconclass: tuple[str, ...] = ()
    aat: tuple[str, ...] = ()
    place: tuple[str, ...] = ()
    years: Years | None = None
    negative: tuple[str, ...] = ()
    like: str | None = None
    page: int = 1
    item: str | None = None

    @property
    def filters(self) -> Filters:
        return Filters(iconclass=self.iconclass, aat=self.aat, place=self.place, years=self.years)

    def to_params(self) -> dict[str, str | list[str]]:
        """URL parameters, leaving out what is empty or default."""
        params: dict[str, str | list[str]] = {}
        if self.collection:
            params["collection"] = self.collection
        if self.q.strip():
            params["q"] = self.q.strip()
        for name, values in (
            ("iconclass", self.iconclass),
            ("aat", self.aat),
            ("place", self.place),
        ):
            if values:
                params[name] = list(values)
        if self.years is not None:
            params["years"] = format_years(self.years)
        if self.negative:
            params["not"] = list(self.negative)
        if self.like:
            params["like"] = self.like
        if self.page > 1:
            params["page"] = str(self.page)
        if self.item:
            params["item"] = self.item
        return params


@dataclass(frozen=True)
class ParsedParams:
    state: SearchState
    problems: list[str] = field(default_factory=list)


def format_years(years: Years) -> str:
    start, end = years
    return f"{'' if start is None else start}:{'' if end is None else end}"


def from_params(get_all: Callable[[str], Sequence[str]]) -> ParsedParams:
    """Read a SearchState from URL parameters; unusable values become problems, not errors.

    Args:
        get_all: every value of one parameter, as `st.query_params.get_all` gives them.
    """
    problems: list[str] = []

    def one(name: str) -> str | None:
        values = [value for value in get_all(name) if value.strip()]
        return values[-1].strip() if values else None

    def many(name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value.strip() for value in get_all(name) if value.strip()))

    years: Years | None = None
    years_text = one("years")
    if years_text:
        try:
            years = parse_years(years_text)
            Filters(years=years).to_qdrant()
        except QueryError as error:
            years = None
            problems.append(f"years: {error}")
    page = 1
    page_text = one("page")
    if page_text:
        if page_text.isdigit() and int(page_text) >= 1:
            page = int(page_text)
        else:
            problems.append(f"page: {page_text!r} is not a page number; showing page 1.")
    aat = many("aat")
    for value in aat:
        try:
            aat_id(value)
        except QueryError as error:
            problems.append(f"aat: {error}")
    state = SearchState(
        collection=one("collection"),
        q=one("q") or "",
        iconclass=tuple(dict.fromkeys(normalise_notation(value) for value in many("iconclass"))),
        aat=tuple(dict.fromkeys(aat_id(value) for value in aat if _is_aat(value))),
        place=many("place"),
        years=years,
        negative=many("not"),
        like=one("like"),
        page=page,
        item=one("item"),
    )
    return ParsedParams(state, problems)


def from_mapping(params: Mapping[str, str | Sequence[str]]) -> ParsedParams:
    """The same as `from_params`, from a plain dict (for scripts and tests)."""

    def get_all(name: str) -> Sequence[str]:
        value = params.get(name, ())
        return [value] if isinstance(value, str) else list(value)

    return from_params(get_all)


def normalise_notation(text: str) -> str:
    """Letters outside brackets upper-case (`25f` is `25F`), spaces there dropped."""
    parts = re.split(r"(\([^)]*\))", text.strip())
    return "".join(
        part if part.startswith("(") else part.replace(" ", "").upper() for part in parts
    )


def _is_aat(value: str) -> bool:
    try:
        aat_id(value)
    except QueryError:
        return False
    return True


def split_terms(text: str) -> tuple[str, ...]:
    """Negative terms as typed: separated by commas."""
    return tuple(dict.fromkeys(term.strip() for term in text.split(",") if term.strip()))
