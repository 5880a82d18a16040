"""How search filters become one Qdrant filter (results are pinned per backend in
tests/integration/test_store_conformance.py and test_search.py)."""

import pytest
from qdrant_client import models

from services.errors import QueryError
from services.filters import Filters, parse_years


def conditions(filters: Filters) -> dict[str, models.FieldCondition]:
    translated = filters.to_qdrant()
    assert translated is not None and isinstance(translated.must, list)
    return {condition.key: condition for condition in translated.must}  # type: ignore[union-attr]


def test_one_value_is_matched_as_a_value() -> None:
    match = conditions(Filters(iconclass=("35F",)))["iconclass_path"].match
    assert match == models.MatchValue(value="35F")


def test_several_values_are_alternatives() -> None:
    match = conditions(Filters(iconclass=("25F2", " 25F3 ")))["iconclass_path"].match
    assert match == models.MatchAny(any=["25F2", "25F3"])


def test_blank_notations_are_dropped() -> None:
    match = conditions(Filters(iconclass=("", "25F")))["iconclass_path"].match
    assert match == models.MatchValue(value="25F")


def test_a_year_range_matches_overlapping_spans() -> None:
    found = conditions(Filters(years=parse_years("1500:1550")))
    assert found["year_start"].range == models.Range(lte=1550)
    assert found["year_end"].range == models.Range(gte=1500)


def test_a_reversed_year_range_is_refused() -> None:
    with pytest.raises(QueryError, match="ends before it starts"):
        Filters(years=(1600, 1500)).to_qdrant()
