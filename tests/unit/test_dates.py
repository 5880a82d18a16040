"""Catalogue dates to year ranges: EDTF, free forms, explicit start/end columns."""

import csv
from pathlib import Path

import pytest

from ingest.dates import parse_years, year_range

DATA = Path(__file__).parents[3] / "shared" / "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # EDTF
        ("1550/1600", (1550, 1600)),
        ("156X", (1560, 1569)),
        ("15XX", (1500, 1599)),
        ("1850~", (1850, 1850)),
        ("1850?", (1850, 1850)),
        ("1850%", (1850, 1850)),
        ("1600-05-12", (1600, 1600)),
        ("1600-05", (1600, 1600)),
        ("-0490", (-490, -490)),
        ("-0490/-0480", (-490, -480)),
        ("1550/..", (1550, None)),
        ("../1600", (None, 1600)),
        ("1550/", (1550, None)),
        ("1984?/2004~", (1984, 2004)),
        ("[1667,1668,1670..1672]", (1667, 1672)),
        ("1985-04-12T23:20:30", (1985, 1985)),
        ("-1XXX", (-1999, -1000)),
        # plain years
        ("1600", (1600, 1600)),
        ("-450", (-450, -450)),
        ("0", (0, 0)),
        ("  1600  ", (1600, 1600)),
        # ranges
        ("1550-1600", (1550, 1600)),
        ("1550 - 1600", (1550, 1600)),
        ("1600\u20131650", (1600, 1650)),
        ("1550 to 1600", (1550, 1600)),
        ("-490 to -480", (-490, -480)),
        ("-480 to -490", (-490, -480)),
        ("1650-55", (1650, 1655)),
        ("1550/60", (1550, 1560)),
        ("1598/02", (1598, 1602)),
        ("ca. 1550/1600", (1550, 1600)),
        # eras
        ("490-480 BC", (-490, -480)),
        ("490 BCE", (-490, -490)),
        ("490 B.C.", (-490, -490)),
        ("490-80 BC", (-490, -480)),
        ("490 BC - 10 AD", (-490, 10)),
        ("AD 1600", (1600, 1600)),
        ("1600 CE", (1600, 1600)),
        # circa
        ("ca. 1600", (1600, 1600)),
        ("ca 1600", (1600, 1600)),
        ("c. 1600", (1600, 1600)),
        ("c1600", (1600, 1600)),
        ("circa 1600", (1600, 1600)),
        ("Circa 1600", (1600, 1600)),
        ("about 1600", (1600, 1600)),
        ("ca. 490 BC", (-490, -490)),
        ("1650?", (1650, 1650)),
        ("ca. 1600?", (1600, 1600)),
        # centuries and decades
        ("16th century", (1500, 1599)),
        ("1st century", (0, 99)),
        ("17th c.", (1600, 1699)),
        ("early 17th century", (1600, 1633)),
        ("mid-17th century", (1633, 1666)),
        ("mid 17th century", (1633, 1666)),
        ("late 17th century", (1666, 1699)),
        ("first half of the 17th century", (1600, 1649)),
        ("second half of the 17th century", (1650, 1699)),
        ("16th-17th century", (1500, 1699)),
        ("5th century BC", (-499, -400)),
        ("late 5th century BC", (-433, -400)),
        ("1600s", (1600, 1699)),
        ("1650s", (1650, 1659)),
        ("1650's", (1650, 1659)),
    ],
)
def test_parse_years(text: str, expected: tuple[int | None, int | None]) -> None:
    assert parse_years(text) == expected


@pytest.mark.parametrize(
    "text",
    [None, "", "   ", "n.d.", "undated", "May", "hello 1600", "12345", "-490 BC", "c", "../.."],
)
def test_unparseable_dates_give_no_years(text: str | None) -> None:
    assert parse_years(text) == (None, None)


def test_month_like_end_is_read_as_edtf_month() -> None:
    assert parse_years("1650-12") == (1650, 1650)


@pytest.mark.parametrize(
    ("date", "start", "end", "expected"),
    [
        ("1651-1666", "1651", None, (1651, 1651)),
        (None, None, "1666", (1666, 1666)),
        ("1600", 1700, 1650, (1650, 1700)),
        ("1600", "1651.0", 1666.0, (1651, 1666)),
        ("1600", " -490 ", "-480", (-490, -480)),
        ("-490 to -480", None, None, (-490, -480)),
        ("-490 to -480", "", "", (-490, -480)),
        ("1600", True, None, (1600, 1600)),
        (None, "ca. 1650", "17th century", (1650, 1699)),
        (None, 1650.5, None, (None, None)),
        ("nonsense", None, None, (None, None)),
    ],
)
def test_year_range_prefers_explicit_columns(
    date: str | None,
    start: str | int | float | None,
    end: str | int | float | None,
    expected: tuple[int | None, int | None],
) -> None:
    assert year_range(date, start, end) == expected


def test_every_getty_date_parses() -> None:
    path = DATA / "getty-cva10-kraters" / "metadata.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with path.open(newline="", encoding="utf-8") as handle:
        dates = {row["date"] for row in csv.DictReader(handle)}
    parsed = {date: parse_years(date) for date in dates}
    unparsed = [date for date, (start, end) in parsed.items() if start is None or end is None]
    assert unparsed == []
    assert all(start <= end < 0 for start, end in parsed.values())  # type: ignore[operator]
    assert parsed["-490 to -480"] == (-490, -480)
    assert parsed["-450"] == (-450, -450)
