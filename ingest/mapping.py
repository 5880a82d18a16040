"""Which of a catalogue's columns feed which of our record fields.

A real manifest never uses our column names, so a `ColumnMapping` renames
theirs to ours. It is data: it serialises to JSON and is remembered with the
collection, a mapping file can hold it, and `--map` flags override it.
`build_record` applies a mapping to one row, whatever format it was read from.
"""

import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.records import Record, RowProblem
from services.errors import ConfigError

FIELDS: tuple[str, ...] = (
    "id",
    "image",
    "caption",
    "title",
    "iconclass",
    "aat",
    "date",
    "year_start",
    "year_end",
    "place",
    "lat",
    "lon",
    "collection",
    "url",
    "license",
    "aat_labels",
)
"""Our field names, as a manifest may name its columns without any mapping."""

LIST_FIELDS: tuple[str, ...] = ("iconclass", "aat", "place", "aat_labels")
"""Fields that hold several values, split on a separator."""

DEFAULT_SEPARATORS: dict[str, str] = {field: ";" for field in LIST_FIELDS}
"""The separator of each list field when a mapping names none."""

TEXT_FIELDS = ("id", "image", "caption", "title", "date", "collection", "url", "license")

FLAG_SYNTAX = "FIELD=COLUMN[:SEP]"


def _check_fields(names: Sequence[str], allowed: Sequence[str], what: str) -> None:
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ConfigError(
            f"unknown {what} {', '.join(repr(name) for name in unknown)}; "
            f"allowed: {' '.join(allowed)}"
        )


class ColumnMapping(BaseModel):
    """Our field -> their column, list separators, and columns to leave out.

    Fields not named in `columns` are read from a column with the field's own
    name when there is one. `separators` holds only the separators someone set;
    `separator()` falls back to `DEFAULT_SEPARATORS` (so merging a remembered
    mapping with flags never resets a separator to its default).

    Example:
        >>> ColumnMapping(columns={"id": "dpd_id"}).column("id")
        'dpd_id'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, str] = Field(default_factory=dict)
    separators: dict[str, str] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        _check_fields(list(columns), FIELDS, "field")
        empty = [field for field, column in columns.items() if not column.strip()]
        if empty:
            raise ConfigError(f"no column given for {', '.join(empty)}")
        return {field: column.strip() for field, column in columns.items()}

    @field_validator("separators")
    @classmethod
    def _known_separators(cls, separators: dict[str, str]) -> dict[str, str]:
        _check_fields(list(separators), LIST_FIELDS, "list field")
        empty = [field for field, sep in separators.items() if not sep]
        if empty:
            raise ConfigError(f"empty separator for {', '.join(empty)}")
        return separators

    def column(self, field: str) -> str:
        """Their column that feeds our `field` (the field's own name when unmapped)."""
        return self.columns.get(field, field)

    def separator(self, field: str) -> str:
        """The separator that splits the list `field`."""
        return self.separators.get(field, DEFAULT_SEPARATORS[field])


def _parse_flag(flag: str) -> tuple[str, str, str | None]:
    """Split one `FIELD=COLUMN[:SEP]` flag into field, column and separator."""
    field, equals, target = flag.partition("=")
    field = field.strip()
    if not equals or not field:
        raise ConfigError(f"--map {flag!r}: expected {FLAG_SYNTAX}, e.g. caption=caption_en")
    _check_fields([field], FIELDS, "field")
    column, colon, sep = target.rpartition(":")
    sep = "\t" if sep == "\\t" else sep
    # A separator is never a word, so `title=dc:title` keeps its colon.
    if not colon or any(char.isalnum() for char in sep):
        column, sep = target, ""
    elif not sep:
        raise ConfigError(f"--map {flag!r}: empty separator after ':'")
    if sep and field not in LIST_FIELDS:
        raise ConfigError(
            f"--map {flag!r}: only list fields take a separator ({', '.join(LIST_FIELDS)})"
        )
    if not column.strip():
        raise ConfigError(f"--map {flag!r}: no column given; expected {FLAG_SYNTAX}")
    return field, column.strip(), sep or None


def parse_map_flags(flags: Sequence[str]) -> ColumnMapping:
    """Build a mapping from `--map` flags.

    Args:
        flags: each `FIELD=COLUMN[:SEP]`; SEP (list fields only) is the text
            after the last colon when it holds no letters or digits; `\\t` is a tab.

    Returns:
        The mapping the flags describe (separators only where given).

    Raises:
        ConfigError: a malformed flag, an unknown field (the message lists the
            allowed ones), or a field given twice.

    Example:
        >>> parse_map_flags(["caption=caption_en", "place=places:|"]).separator("place")
        '|'
    """
    columns: dict[str, str] = {}
    separators: dict[str, str] = {}
    for flag in flags:
        field, column, sep = _parse_flag(flag)
        if field in columns:
            raise ConfigError(f"--map {field}= given twice ({columns[field]!r} and {column!r})")
        columns[field] = column
        if sep is not None:
            separators[field] = sep
    return ColumnMapping(columns=columns, separators=separators)


def _read_mapping_data(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"mapping file {path} must end in .toml or .json")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ConfigError(f"cannot read mapping file {path}: {err.strerror or err}") from err
    try:
        return tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"mapping file {path} is not valid {suffix[1:].upper()}: {err}") from err


def load_mapping_file(path: Path) -> ColumnMapping:
    """Read a mapping from a TOML or JSON file.

    Both hold a `columns` table (field -> column), an optional `separators`
    table (list field -> separator) and an optional `drop` list. In TOML,
    `drop = [...]` goes before the tables.

    Raises:
        ConfigError: the file is missing, unreadable, malformed, or names
            unknown fields or keys.
    """
    data = _read_mapping_data(path)
    if not isinstance(data, dict):
        raise ConfigError(f"mapping file {path} must hold an object with 'columns'")
    try:
        return ColumnMapping.model_validate(data)
    except ConfigError as err:
        raise ConfigError(f"mapping file {path}: {err}") from err
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in err.errors()
        )
        raise ConfigError(
            f"mapping file {path}: {problems} (expected keys: columns, separators, drop)"
        ) from err


def merge(base: ColumnMapping, override: ColumnMapping) -> ColumnMapping:
    """A mapping where `override` (e.g. CLI flags) wins over `base` (e.g. remembered).

    Columns and separators are overridden key by key; `drop` lists are joined.
    """
    return ColumnMapping(
        columns={**base.columns, **override.columns},
        separators={**base.separators, **override.separators},
        drop=list(dict.fromkeys([*base.drop, *override.drop])),
    )


def build_record(
    values: Mapping[str, Any], number: int, mapping: ColumnMapping
) -> Record | RowProblem:
    """Turn one row (their column -> value) into a Record in our vocabulary.

    Unparseable lat/lon/years become None with the raw value kept in `extra`
    (`lat_raw`, `year_start_raw`, ...); every unmapped, non-empty column goes
    into `extra` under its own name unless the mapping drops it.
    """
    fields: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    used: set[str] = set()
    for name in FIELDS:
        column = mapping.column(name)
        if column not in values:
            continue
        used.add(column)
        raw = values[column]
        if name in LIST_FIELDS:
            fields[name] = _items(raw, mapping.separator(name))
        elif isinstance(raw, dict | list):
            reason = f"{column!r} must be a single value for {name}"
            return RowProblem(number, reason, fields.get("id"))
        elif name in TEXT_FIELDS:
            fields[name] = _text(raw)
        else:
            fields[name] = _year(raw) if name.startswith("year") else _coordinate(raw, name)
            if fields[name] is None and _text(raw) is not None:
                derived[f"{name}_raw"] = _text(raw)
    if not fields.get("id"):
        return RowProblem(number, "missing id")
    places = fields.pop("place", ())
    fields["place"] = places[0] if places else None
    if len(places) > 1:
        derived["place_all"] = list(places)
    if labels := fields.pop("aat_labels", ()):
        derived["aat_labels"] = list(labels)
    if fields.get("image"):
        fields["image"] = _portable_path(fields["image"])
    extra = {
        key: cleaned
        for key, value in values.items()
        if key not in used and key not in mapping.drop
        if (cleaned := _extra_value(value)) is not None
    }
    return Record(**fields, extra={**extra, **derived})


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _items(value: Any, separator: str) -> tuple[str, ...]:
    if isinstance(value, list):
        parts: Iterable[Any] = value
    else:
        text = _text(value)
        parts = _split_outside_brackets(text, separator) if text else ()
    return tuple(item for part in parts if (item := _text(part)))


def _split_outside_brackets(text: str, separator: str) -> list[str]:
    """Split on `separator`, except inside (...) as in `86(FAC ET SPERA; ORA)`.

    Brackets that do not balance are taken as plain text: a plain split.
    """
    parts = text.split(separator)
    if "(" not in text:
        return parts
    joined: list[str] = []
    depth = 0
    for part in parts:
        if depth > 0:
            joined[-1] += separator + part
        else:
            joined.append(part)
        depth += part.count("(") - part.count(")")
        if depth < 0:
            return parts
    return joined if depth == 0 else parts


def _year(value: Any) -> int | None:
    text = _text(value)
    if text is None or isinstance(value, bool):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _coordinate(value: Any, name: str) -> float | None:
    text = _text(value)
    if text is None or isinstance(value, bool):
        return None
    try:
        # A decimal comma, as a ';'-delimited European export writes it.
        number = float(text.replace(",", ".", 1) if text.count(",") == 1 else text)
    except ValueError:
        return None
    limit = 90.0 if name == "lat" else 180.0
    return number if math.isfinite(number) and abs(number) <= limit else None


def _portable_path(image: str) -> str:
    if image.lower().startswith(("http://", "https://")):
        return image
    return image.replace("\\", "/")


def _extra_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return None if value in (None, [], {}) else value
