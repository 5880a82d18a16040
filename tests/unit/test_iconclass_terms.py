"""Iconclass notations: paths, top-level digits, labels, splitting a cell."""

import csv
from pathlib import Path

import pytest

from services.errors import ConfigError
from services.iconclass_terms import (
    labels,
    notation_path,
    rejoin_notations,
    split_notations,
    top_level,
)

DATA = Path(__file__).parents[3] / "shared" / "data"


@pytest.mark.parametrize(
    ("notation", "expected"),
    [
        (
            "25F32(CROW)(+1)",
            ["2", "25", "25F", "25F3", "25F32", "25F32(CROW)", "25F32(CROW)(+1)"],
        ),
        ("25F(+332)", ["2", "25", "25F", "25F(+3)", "25F(+33)", "25F(+332)"]),
        ("5(+11)", ["5", "5(+1)", "5(+11)"]),
        ("86(FAC ET SPERA)", ["8", "86", "86(FAC ET SPERA)"]),
        (
            "83(CICERO, De Officiis I 5 14)",
            ["8", "83", "83(CICERO, De Officiis I 5 14)"],
        ),
        ("11H(PAUL)4", ["1", "11", "11H", "11H(PAUL)", "11H(PAUL)4"]),
        # a `:` inside brackets does not combine notations
        (
            "71X1(Ps. 102:15)4",
            ["7", "71", "71X", "71X1", "71X1(Ps. 102:15)", "71X1(Ps. 102:15)4"],
        ),
        # a combination: both paths, then the whole
        (
            "46A170:5(+12)",
            ["4", "46", "46A", "46A1", "46A17", "46A170", "5", "5(+1)", "5(+12)", "46A170:5(+12)"],
        ),
        # doubled letters: 25FF (fabulous animals) is a sibling of 25F ...
        ("25FF24", ["2", "25", "25FF", "25FF2", "25FF24"]),
        # ... but the package hangs 31AA (female figure) under 31A
        ("31AA2364", ["3", "31", "31A", "31AA", "31AA2", "31AA23", "31AA236", "31AA2364"]),
        # normalised: case, surrounding and inner whitespace, an unclosed bracket
        ("49l8", ["4", "49", "49L", "49L8"]),
        (" 56D1(+3) ", ["5", "56", "56D", "56D1", "56D1(+3)"]),
        ("86(ANCHORA SPEI", ["8", "86", "86(ANCHORA SPEI)"]),
        ("86(SCRUTAMINI (SCRIPTURAS))", ["8", "86", "86(SCRUTAMINI (SCRIPTURAS))"]),
        # unknown to the package: still a structural path
        (
            "99Z99(FOO)(+12)",
            ["9", "99", "99Z", "99Z9", "99Z99", "99Z99(FOO)", "99Z99(FOO)(+1)", "99Z99(FOO)(+12)"],
        ),
        ("44A1(+..)", ["4", "44", "44A", "44A1", "44A1(+..)"]),
        ("44A1(+3)(FRIESLAND)", ["4", "44", "44A", "44A1", "44A1(+3)", "44A1(+3)(FRIESLAND)"]),
    ],
)
def test_notation_path(notation: str, expected: list[str]) -> None:
    assert notation_path(notation) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", " HIJ HEEFT VERSTROOID DE HOOGMOEDIGEN ...)", "ICONCLASS"]
)
def test_not_a_notation_has_no_path(text: str) -> None:
    assert notation_path(text) == []
    assert top_level(text) is None
    assert labels(text) is None


@pytest.mark.parametrize(
    ("notation", "digit"),
    [("25F32(CROW)(+1)", "2"), ("46A170:5(+12)", "4"), ("0", "0"), (" 9 ", "9")],
)
def test_top_level(notation: str, digit: str) -> None:
    assert top_level(notation) == digit


@pytest.mark.parametrize(
    ("notation", "lang", "expected"),
    [
        ("25F32", "en", "song-birds"),
        ("25F32(CROW)(+1)", "en", "song-birds: crow (+ animals used symbolically)"),
        ("25F32(CROW)(+1)", "de", "Singvögel: Krähe (+ Tiere als Symbole)"),
        ("86(FAC ET SPERA)", "en", "proverbs, sayings, etc. (FAC ET SPERA)"),
        ("86(FAC ET SPERA)", "fr", "proverbes, dictons, etc. (FAC ET SPERA)"),
        (
            "83(CICERO, De Officiis I 5 14)",
            "en",
            "(scenes from) specific works of literature (CICERO, De Officiis I 5 14)",
        ),
        # the name goes where the template's placeholder is, not into "(family group)"
        (
            "42B742(1)",
            "en",
            "mother and child(ren), woman and child(ren) (family group) (1)",
        ),
        (
            "46A170:5(+12)",
            "en",
            "Labour : Abstract Ideas and Concepts (+ abstract concept represented by male figure)",
        ),
        ("49l8", "en", "inscription"),
        ("99Z99(FOO)", "en", None),
        ("44A1(+3)(FRIESLAND)", "en", None),
        ("11C13(+99)", "en", None),
    ],
)
def test_labels(notation: str, lang: str, expected: str | None) -> None:
    assert labels(notation, lang) == expected


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'xx'.*en, de"):
        labels("25F32", "xx")


def test_split_keeps_a_semicolon_inside_a_motto() -> None:
    cell = "25D12;86(HIJ HEEFT EEN KRACHTIG WERK; HIJ HEEFT VERSTROOID ...);56D1(+3) ;;49L8"
    assert split_notations(cell) == [
        "25D12",
        "86(HIJ HEEFT EEN KRACHTIG WERK; HIJ HEEFT VERSTROOID ...)",
        "56D1(+3)",
        "49L8",
    ]


def test_an_unclosed_bracket_does_not_swallow_the_next_notations() -> None:
    assert rejoin_notations(["86(ANCHORA SPEI", "25F", " more)", "x"]) == [
        "86(ANCHORA SPEI",
        "25F",
        "more)",
        "x",
    ]


def test_every_dpd_notation_has_a_path_with_its_top_level() -> None:
    path = DATA / "dpd-printers-devices" / "metadata.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with path.open(newline="", encoding="utf-8") as handle:
        cells = [row["iconclass"] for row in csv.DictReader(handle)]
    notations = [notation for cell in cells for notation in split_notations(cell)]
    bad = [n for n in notations if (top := top_level(n)) is None or top not in notation_path(n)]
    known = [n for n in notations if labels(n) is not None]
    assert len(notations) > 13_000
    assert bad == []
    assert len(known) / len(notations) > 0.95
