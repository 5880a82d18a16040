"""Catalogue dates to inclusive year ranges.

Years are integers with BCE as negative numbers, *without* the astronomical
shift: 490 BCE is -490 (as catalogues write it), not -489. EDTF is tried first
(through the `edtf` package), then the free forms catalogues use, so
`1650-12` is December 1650 while `1650-55` is 1650..1655. Approximate
and uncertain dates (`1850~`, `ca. 1600`, `1650?`) keep their year; they are
not widened.

Centuries follow EDTF's `15XX`: the 16th century is 1500..1599, the 5th
century BC is -499..-400. `early`, `mid` and `late` are the first, middle and
last third of a century; `1600s` is the century 1600..1699 and `1650s` the
decade 1650..1659.
"""

import functools
import re
import time

from edtf import parse_edtf

Years = tuple[int | None, int | None]
NO_YEARS: Years = (None, None)

_APPROX = re.compile(
    r"^(?:(?:circa|approximately|approx\.?|about|around)\s+|(?:ca\.?|c\.?)\s*(?=[-\d])|~\s*)"
    r"|\s*[?~%]$"
)
_ERA = re.compile(r"^(?P<body>.*?)\s*(?P<era>b\.?\s?c\.?(?:\s?e\.?)?|a\.?\s?d\.?|c\.?\s?e\.?)$")
_LEADING_AD = re.compile(r"^(?:a\.?\s?d\.?)\s*(?P<body>\d.*)$")
_YEAR = re.compile(r"^(?P<sign>-?)(?P<digits>\d{1,4})$")
_YEARS_S = re.compile(r"^(?P<digits>\d{2,4})'?s$")
_ORDINAL = r"(?P<n>\d{1,2})(?:st|nd|rd|th)"
_CENTURY = re.compile(
    r"^(?:(?P<part>early|mid|middle|late|first half of|second half of)\s*-?\s*(?:the\s+)?)?"
    + _ORDINAL
    + r"\s*(?:century|cent\.?|c\.?)$"
)
_BARE_ORDINAL = re.compile(r"^" + _ORDINAL + r"$")
_SEPARATOR = re.compile(r"\s*(?:-|/|\bto\b|\buntil\b)\s*")
_ABBREVIATED_END = re.compile(r"^(?P<start>\d{3,4})\s*[-/]\s*(?P<end>\d{1,2})$")

# Thirds and halves of a century, as offsets from its first and last year.
_CENTURY_PARTS = {
    "early": (0, -66),
    "mid": (33, -33),
    "middle": (33, -33),
    "late": (66, 0),
    "first half of": (0, -50),
    "second half of": (50, 0),
}


@functools.lru_cache(maxsize=4096)
def parse_years(text: str | None) -> Years:
    """The inclusive year range of a catalogue date, or (None, None).

    Never raises: anything it cannot read gives (None, None).

    >>> parse_years("1550/1600"), parse_years("156X"), parse_years("490-480 BC")
    ((1550, 1600), (1560, 1569), (-490, -480))
    >>> parse_years("early 17th century"), parse_years("1550/..")
    ((1600, 1633), (1550, None))
    """
    if text is None:
        return NO_YEARS
    cleaned = " ".join(text.split())
    if not cleaned:
        return NO_YEARS
    return _edtf_years(cleaned) or _free_form_years(cleaned) or NO_YEARS


def year_range(
    date: str | None,
    year_start: str | int | float | None = None,
    year_end: str | int | float | None = None,
) -> Years:
    """The year range of a record: explicit start/end columns first, else its date.

    A missing end takes the start (and a missing start the end); a start after
    the end is swapped. Without either explicit value the date text is parsed.

    >>> year_range("1651-1666", "1651", None), year_range("-490 to -480")
    ((1651, 1651), (-490, -480))
    """
    start = _explicit_year(year_start, lower=True)
    end = _explicit_year(year_end, lower=False)
    if start is None:
        if end is None:
            return parse_years(date)
        start = end
    if end is None:
        end = start
    return (end, start) if start > end else (start, end)


def _explicit_year(value: str | int | float | None, *, lower: bool) -> int | None:
    """A year column's value: an int, an integral float, or text we can parse."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = value.strip()
    if re.fullmatch(r"-?\d+(?:\.0*)?", text):
        return int(float(text)) if "." in text else int(text)
    low, high = parse_years(text)
    return low if lower else high


def _edtf_years(text: str) -> Years | None:
    """Years of an EDTF string; intervals are split here so open ends are None."""
    if "/" in text:
        left, _, right = text.partition("/")
        low = _edtf_bounds(left)
        high = _edtf_bounds(right)
        if low is None or high is None:
            return None
        years = (low[0], high[1])
        if years == NO_YEARS:
            return None
        return _ordered(years)
    return _edtf_bounds(text)


def _edtf_bounds(text: str) -> Years | None:
    """(first, last) year of one EDTF date; an open or unknown side is (None, None)."""
    if text in ("", ".."):
        return NO_YEARS
    try:
        parsed = parse_edtf(text)
        lower, upper = parsed.lower_strict(), parsed.upper_strict()
    except Exception:  # edtf raises more than EDTFParseException (TypeError on `../1600`)
        return None
    low = lower.tm_year if isinstance(lower, time.struct_time) else None
    high = upper.tm_year if isinstance(upper, time.struct_time) else None
    if low is None and high is None:
        return None
    return low, high


def _free_form_years(text: str) -> Years | None:
    """Years of the non-EDTF forms: ranges, BC/AD, circa, centuries, decades."""
    lowered = text.lower().replace("\u2013", "-").replace("\u2014", "-")
    abbreviated = _abbreviated_range(lowered)
    if abbreviated is not None:
        return abbreviated
    for match in _SEPARATOR.finditer(lowered):
        left, right = lowered[: match.start()], lowered[match.end() :]
        if left and right:
            years = _range(left, right)
            if years is not None:
                return years
    return _endpoint(lowered, default_era=None)


def _abbreviated_range(text: str) -> Years | None:
    """`1550-60` is 1550..1560 and `1598/02` 1598..1602: the end shares the start's century.

    (`1598-02` never gets here: EDTF reads it as February 1598.)
    """
    body, era = _split_era(_strip_approx(text))
    match = _ABBREVIATED_END.match(body)
    if match is None:
        return None
    start_text, end_text = match["start"], match["end"]
    start = int(start_text)
    end = int(start_text[: len(start_text) - len(end_text)] + end_text)
    step = 10 ** len(end_text)
    if era == "bc":
        # BC years count down: 490-80 BC ends in 480 BC, 410-95 BC in 395 BC.
        end = end - step if end > start else end
        return _ordered((-start, -end))
    return start, (end + step if end < start else end)


def _range(left: str, right: str) -> Years | None:
    """A range of two endpoints; an era given only on the right applies to both."""
    _, right_era = _split_era(_strip_approx(right))
    if _BARE_ORDINAL.match(_strip_approx(left)) and _CENTURY.match(_split_era(right)[0]):
        left = f"{left} century"
    first = _endpoint(left, default_era=right_era)
    last = _endpoint(right, default_era=None)
    if first is None or last is None:
        return None
    lows = [year for year in (first[0], last[0]) if year is not None]
    highs = [year for year in (first[1], last[1]) if year is not None]
    return (min(lows) if lows else None, max(highs) if highs else None)


def _endpoint(text: str, *, default_era: str | None) -> Years | None:
    """One year, decade or century, with an optional circa and era."""
    body, era = _split_era(_strip_approx(text))
    era = era or default_era
    if year := _YEAR.match(body):
        value = int(year["digits"])
        if year["sign"]:
            return None if era else (-value, -value)
        return (-value, -value) if era == "bc" else (value, value)
    if decade := _YEARS_S.match(body):
        return None if era == "bc" else _years_s(decade["digits"])
    if century := _CENTURY.match(body):
        return _century(int(century["n"]), century["part"], bc=era == "bc")
    return None


def _years_s(digits: str) -> Years:
    """`1600s` is a century, `1650s` a decade, `1655s` that one year."""
    value = int(digits)
    if digits.endswith("00"):
        return value, value + 99
    if digits.endswith("0"):
        return value, value + 9
    return value, value


def _century(number: int, part: str | None, *, bc: bool) -> Years | None:
    if number == 0:
        return None
    if bc:
        first, last = -(number * 100 - 1), -(number - 1) * 100
    else:
        first, last = (number - 1) * 100, number * 100 - 1
    if part is None:
        return first, last
    from_start, from_end = _CENTURY_PARTS[part]
    return first + from_start, last + from_end


def _strip_approx(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, _APPROX.sub("", text.strip())
    return text


def _split_era(text: str) -> tuple[str, str | None]:
    """`490 bc` -> ("490", "bc"); `ad 1600` -> ("1600", "ad")."""
    if leading := _LEADING_AD.match(text):
        return leading["body"], "ad"
    match = _ERA.match(text)
    if match is None or not match["body"]:
        return text, None
    era = "bc" if match["era"].startswith("b") else "ad"
    return match["body"], era


def _ordered(years: Years) -> Years:
    low, high = years
    if low is not None and high is not None and low > high:
        return high, low
    return years
