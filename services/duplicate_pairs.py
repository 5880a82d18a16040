"""Labelled pairs for calibrating and evaluating duplicate detection.

Two file layouts are read (CSV, TSV, `;` or `|` separated):

- our own: `id_a,id_b,label` with label 1 (the same item) or 0 (not);
  `yes`/`no` and `true`/`false` are accepted too.
- a candidates list such as the DPD's `near_duplicate_candidates.csv`:
  `image_a,image_b,...,visually_checked_same_design`, where an image path's file
  stem is the record id (`images/dpd_0808.jpg` -> `dpd_0808`). `yes` is a
  duplicate, `no` is not, an empty cell means nobody checked the pair: such
  pairs are left out unless `include_unchecked` counts them as duplicates.

When a file lists duplicates only, `sample_negatives` draws random pairs that
it does not list (nor imply: two items in one duplicate group are never a
negative) so precision can be measured.
"""

import csv
import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.duplicate_metrics import connected_groups, group_members
from services.errors import SourceError

YES = {"1", "yes", "y", "true"}
NO = {"0", "no", "n", "false"}
CHECKED_COLUMN = "visually_checked_same_design"
DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class LabelledPair:
    a: str
    b: str
    duplicate: bool

    @property
    def key(self) -> tuple[str, str]:
        """The pair's ids in sorted order: (a, b) and (b, a) are the same pair."""
        return (self.a, self.b) if self.a <= self.b else (self.b, self.a)


@dataclass(frozen=True)
class PairFile:
    """What a pairs file holds: the labelled pairs, and how many were left out unchecked."""

    path: Path
    pairs: tuple[LabelledPair, ...]
    unchecked: int = 0


def read_pairs(path: Path, *, include_unchecked: bool = False) -> PairFile:
    """Read a pairs file in either layout.

    Raises:
        SourceError: the file is missing, has neither layout's columns, or a
            label cannot be read (the message names the row).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise SourceError(
            f"Cannot read the pairs file {path}: {error.strerror or error}."
        ) from error
    if not text.strip():
        raise SourceError(f"The pairs file {path} is empty.")
    delimiter = _delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    columns = set(header)
    rows = [dict(zip(header, row, strict=False)) for row in reader if any(row)]
    if {"id_a", "id_b", "label"} <= columns:
        return PairFile(path, tuple(_labelled_rows(path, rows)))
    if {"image_a", "image_b"} <= columns:
        pairs, unchecked = _candidate_rows(path, rows, include_unchecked)
        return PairFile(path, tuple(pairs), unchecked)
    raise SourceError(
        f"The pairs file {path} needs columns id_a,id_b,label (label 1 for the same item, "
        f"0 for not) or image_a,image_b[,{CHECKED_COLUMN}]; it has {', '.join(sorted(columns))}."
    )


def _delimiter(header: str) -> str:
    return max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","


def _label(path: Path, row: int, value: str) -> bool:
    cleaned = value.strip().lower()
    if cleaned in YES:
        return True
    if cleaned in NO:
        return False
    raise SourceError(f"{path}, row {row}: label {value!r} is not 1/0 or yes/no.")


def _labelled_rows(path: Path, rows: Iterable[dict[str, str]]) -> Iterable[LabelledPair]:
    for line, row in enumerate(rows, start=2):
        a, b = (row.get("id_a") or "").strip(), (row.get("id_b") or "").strip()
        if a and b and a != b:
            yield LabelledPair(a, b, _label(path, line, row.get("label") or ""))


def _candidate_rows(
    path: Path, rows: Iterable[dict[str, str]], include_unchecked: bool
) -> tuple[list[LabelledPair], int]:
    pairs: list[LabelledPair] = []
    unchecked = 0
    for line, row in enumerate(rows, start=2):
        a, b = Path(row.get("image_a") or "").stem, Path(row.get("image_b") or "").stem
        if not a or not b or a == b:
            continue
        checked = (row.get(CHECKED_COLUMN) or "").strip()
        if checked:
            pairs.append(LabelledPair(a, b, _label(path, line, checked)))
        elif include_unchecked:
            pairs.append(LabelledPair(a, b, True))
        else:
            unchecked += 1
    return pairs, unchecked


def duplicate_sets(pairs: Iterable[LabelledPair]) -> dict[str, frozenset[str]]:
    """For each id in a duplicate pair, every id it is a duplicate of, directly or through others.

    "Shows the same design" is transitive: if A~B and B~C are labelled, C is a
    duplicate of A too.
    """
    return group_members(connected_groups(pair.key for pair in pairs if pair.duplicate))


def sample_negatives(
    ids: Sequence[str], pairs: Sequence[LabelledPair], count: int, seed: int
) -> list[LabelledPair]:
    """`count` random pairs of `ids` that `pairs` neither lists nor implies (seeded).

    Fewer come back when there are not that many such pairs.
    """
    listed = {pair.key for pair in pairs}
    same = duplicate_sets(pairs)
    pool = sorted(set(ids))
    possible = len(pool) * (len(pool) - 1) // 2 - len(listed)
    rng = random.Random(seed)
    drawn: dict[tuple[str, str], LabelledPair] = {}
    attempts = 0
    while len(drawn) < min(count, possible) and attempts < 20 * count + 100:
        attempts += 1
        a, b = rng.sample(pool, 2)
        pair = LabelledPair(a, b, False)
        if pair.key in listed or b in same.get(a, ()):
            continue
        drawn.setdefault(pair.key, pair)
    return list(drawn.values())
