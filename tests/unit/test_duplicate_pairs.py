"""Reading labelled pair files in both layouts, and drawing non-duplicate pairs."""

from pathlib import Path

import pytest

from services.duplicate_pairs import (
    LabelledPair,
    duplicate_sets,
    read_pairs,
    sample_negatives,
)
from services.errors import SourceError

DPD_CANDIDATES = (
    Path(__file__).parents[3]
    / "shared"
    / "data"
    / "dpd-printers-devices"
    / "near_duplicate_candidates.csv"
)
CANDIDATES = (
    "image_a,image_b,dhash16_hamming,visually_checked_same_design,caption_a\n"
    'images/dpd_0808.jpg,images/dpd_2104.jpg,19,yes,"Armillary sphere, with\nnewline"\n'
    "images/dpd_1374.jpg,images/dpd_1442.jpg,22,no,\n"
    "images/dpd_0305.jpg,images/dpd_0594.jpg,42,,A man sowing\n"
)


def write(tmp_path: Path, text: str, name: str = "pairs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_labelled_layout_with_any_label_spelling(tmp_path: Path) -> None:
    path = write(tmp_path, "id_a;id_b;label\na;b;1\nb;c;yes\nc;d;0\nd;e;False\n e ; e ;1\n")
    pair_file = read_pairs(path)
    assert pair_file.pairs == (
        LabelledPair("a", "b", True),
        LabelledPair("b", "c", True),
        LabelledPair("c", "d", False),
        LabelledPair("d", "e", False),
    )
    assert pair_file.unchecked == 0


def test_candidates_layout_maps_file_stems_and_checked_column(tmp_path: Path) -> None:
    pair_file = read_pairs(write(tmp_path, CANDIDATES))
    assert pair_file.pairs == (
        LabelledPair("dpd_0808", "dpd_2104", True),
        LabelledPair("dpd_1374", "dpd_1442", False),
    )
    assert pair_file.unchecked == 1
    counted = read_pairs(write(tmp_path, CANDIDATES), include_unchecked=True)
    assert counted.pairs[-1] == LabelledPair("dpd_0305", "dpd_0594", True)
    assert counted.unchecked == 0


@pytest.mark.skipif(not DPD_CANDIDATES.exists(), reason="shared DPD data not present")
def test_the_real_dpd_candidates_file() -> None:
    checked = read_pairs(DPD_CANDIDATES)
    assert (len(checked.pairs), checked.unchecked) == (32, 33)
    assert all(pair.duplicate for pair in checked.pairs)
    every = read_pairs(DPD_CANDIDATES, include_unchecked=True)
    assert len(every.pairs) == 65 and all(pair.duplicate for pair in every.pairs)
    assert LabelledPair("dpd_0808", "dpd_2104", True) in every.pairs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c\n1,2,3\n", "needs columns id_a,id_b,label"),
        ("id_a,id_b,label\nx,y,maybe\n", "row 2: label 'maybe'"),
        ("", "is empty"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        read_pairs(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="Cannot read the pairs file"):
        read_pairs(tmp_path / "nope.csv")


def test_duplicate_sets_are_transitive() -> None:
    pairs = [
        LabelledPair("a", "b", True),
        LabelledPair("b", "c", True),
        LabelledPair("c", "d", False),
    ]
    sets = duplicate_sets(pairs)
    assert sets["a"] == {"b", "c"} and "d" not in sets


def test_negatives_are_seeded_unlisted_and_not_implied() -> None:
    ids = [f"i{n}" for n in range(30)]
    positives = [LabelledPair("i0", "i1", True), LabelledPair("i1", "i2", True)]
    first = sample_negatives(ids, positives, 50, seed=7)
    assert first == sample_negatives(ids, positives, 50, seed=7)
    assert first != sample_negatives(ids, positives, 50, seed=8)
    assert len(first) == 50 and len({pair.key for pair in first}) == 50
    forbidden = {("i0", "i1"), ("i1", "i2"), ("i0", "i2")}
    assert not forbidden & {pair.key for pair in first}
    assert all(not pair.duplicate and pair.a != pair.b for pair in first)


def test_negatives_stop_when_there_are_not_enough_pairs() -> None:
    positives = [LabelledPair("a", "b", True)]
    assert {p.key for p in sample_negatives(["a", "b", "c"], positives, 10, seed=0)} == {
        ("a", "c"),
        ("b", "c"),
    }
    assert sample_negatives(["a"], [], 5, seed=0) == []
