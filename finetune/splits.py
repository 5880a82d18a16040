"""Train / validation / test split by a seeded hash of each record's group.

An item's split depends only on its group key (its record id unless grouped),
the seed and the fractions: adding items to a catalogue never moves an item
that was already there, so a test split stays held out across re-runs. Items
that share a group (pages of one book, finds of one site, near-duplicates)
always land in the same split.

>>> split_of("dpd_0001", seed=0, validation=0.15, test=0.15)
'train'
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from services.errors import ConfigError

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitConfig:
    """How items are split: `group_by` names a metadata field whose value groups items."""

    seed: int = 0
    validation: float = 0.15
    test: float = 0.15
    group_by: str | None = None

    def __post_init__(self) -> None:
        if not (0 < self.validation < 1 and 0 < self.test < 1 and self.validation + self.test < 1):
            raise ConfigError(
                f"validation ({self.validation}) and test ({self.test}) fractions must each be "
                "between 0 and 1 and leave room for training"
            )


def unit_hash(key: str, seed: int) -> float:
    """A number in [0, 1), the same for the same key and seed on every machine."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str, *, seed: int, validation: float, test: float) -> Split:
    """The split of one group key."""
    value = unit_hash(key, seed)
    if value < test:
        return "test"
    if value < test + validation:
        return "validation"
    return "train"


def assign_splits(
    ids: Iterable[str], config: SplitConfig, groups: Mapping[str, str] | None = None
) -> dict[str, Split]:
    """record id -> split.

    Args:
        ids: the record ids.
        config: seed and fractions.
        groups: record id -> group id; ids it leaves out are their own group.
            Any grouping fits: a metadata field (`groups_by_field`) or clusters
            of near-duplicates found by another tool.
    """
    groups = groups or {}
    return {
        record_id: split_of(
            _group_key(record_id, groups),
            seed=config.seed,
            validation=config.validation,
            test=config.test,
        )
        for record_id in ids
    }


def _group_key(record_id: str, groups: Mapping[str, str]) -> str:
    group = groups.get(record_id)
    # Prefixes keep a group named like some record id apart from that record.
    return f"group:{group}" if group else f"id:{record_id}"


def groups_by_field(values: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """record id -> group from each record's values of one field (the first non-empty one)."""
    found: dict[str, str] = {}
    for record_id, field_values in values.items():
        first = next((value.strip() for value in field_values if value and value.strip()), None)
        if first is not None:
            found[record_id] = first
    return found


def split_counts(splits: Mapping[str, Split]) -> dict[str, int]:
    """How many items each split holds."""
    counts: dict[str, int] = dict.fromkeys(SPLITS, 0)
    for split in splits.values():
        counts[split] += 1
    return counts


def check_splits(splits: Mapping[str, Split]) -> None:
    """Every split needs items: training to learn, validation to choose, test to report.

    Raises:
        ConfigError: a split is empty, with advice.
    """
    counts = split_counts(splits)
    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        raise ConfigError(
            f"the {' and '.join(empty)} split would be empty ({len(splits)} items in "
            f"{counts['train']}/{counts['validation']}/{counts['test']}): fine-tuning needs "
            "more items, fewer or larger groups, or larger --validation/--test fractions"
        )
