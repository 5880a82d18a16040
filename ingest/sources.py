"""Read an ingest source (CSV/TSV, JSONL or an image folder) into Records.

`open_source` checks what can be checked up front (the file exists, its format,
encoding and delimiter, that it has an id column) and raises `SourceError`
when the source cannot be read at all. `Source.records()` then streams one
`Record` or `RowProblem` per row: a bad row is reported, never fatal.
"""

import codecs
import csv
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from ingest.mapping import ColumnMapping, build_record
from ingest.records import Record, RowProblem
from services.errors import SourceError

log = logging.getLogger(__name__)

SourceKind = Literal["csv", "jsonl", "folder"]
Row = Record | RowProblem

TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp")
# `.txt` is left out: beside images it is a caption sidecar, not a manifest.
MANIFEST_HINT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
DELIMITERS = ",;|\t"
WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_SNIFF_CHARS = 32 * 1024
_CHUNK_BYTES = 1024 * 1024
_JSONL_PROBE_LINES = 100


class Source(Protocol):
    """A readable source of catalogue rows."""

    @property
    def root(self) -> Path:
        """Folder that relative image paths start from."""
        ...

    @property
    def kind(self) -> SourceKind:
        """'csv', 'jsonl' or 'folder'."""
        ...

    def records(self) -> Iterator[Row]:
        """Stream one Record or RowProblem per row, in source order."""
        ...


def open_source(path: Path, mapping: ColumnMapping) -> Source:
    """Open a manifest (CSV/TSV/.txt, JSONL) or an image folder for reading.

    Args:
        path: the manifest file, or a folder of images (read recursively).
        mapping: which of its columns feed our fields (unused for a folder).

    Raises:
        SourceError: the path is missing, of an unknown kind, empty, has no
            images, or has no id column (the message suggests `--map id=COLUMN`).

    Example:
        >>> source = open_source(Path("prints/metadata.csv"), ColumnMapping())  # doctest: +SKIP
        >>> [row.id for row in source.records() if isinstance(row, Record)]  # doctest: +SKIP
    """
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.is_dir():
        return FolderSource.open(path)
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return TableSource.open(path, mapping)
    if suffix in JSONL_SUFFIXES:
        return JsonlSource.open(path, mapping)
    if suffix in IMAGE_SUFFIXES:
        raise SourceError(f"{path} is a single image; give the folder that holds it")
    raise SourceError(
        f"cannot read {path}: expected a folder of images or a manifest ending in "
        f"{' '.join(TABLE_SUFFIXES + JSONL_SUFFIXES)}"
    )


@dataclass(frozen=True)
class TableSource:
    """A delimited text manifest (CSV, TSV, ...) with a header row."""

    path: Path
    mapping: ColumnMapping
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    kind: Literal["csv"] = "csv"

    @property
    def root(self) -> Path:
        """The manifest's folder."""
        return self.path.parent

    @classmethod
    def open(cls, path: Path, mapping: ColumnMapping) -> "TableSource":
        """Detect encoding and delimiter, read the header, check the mapped columns."""
        encoding = _detect_encoding(path)
        with path.open(encoding=encoding, newline="") as handle:
            delimiter = _detect_delimiter(handle.read(_SNIFF_CHARS))
            handle.seek(0)
            try:
                first = next(csv.reader(handle, delimiter=delimiter), None)
            except csv.Error as err:
                raise SourceError(f"{path} has an unreadable header row: {err}") from err
        if not first or not any(name.strip() for name in first):
            raise SourceError(f"{path} is empty: expected a header row of column names")
        header = _clean_header(first)
        _check_columns(path, mapping, header)
        return cls(path, mapping, encoding, delimiter, header)

    def records(self) -> Iterator[Row]:
        """Stream rows; numbers count the header as row 1, as a spreadsheet does."""
        seen = _SeenIds()
        width = len(self.header)
        id_column = self.mapping.column("id")
        with self.path.open(encoding=self.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader, None)
            number = 1
            try:
                for number, cells in enumerate(reader, start=2):
                    if not any(cell.strip() for cell in cells):
                        continue
                    values = dict(zip(self.header, cells, strict=False))
                    if any(cell.strip() for cell in cells[width:]):
                        reason = (
                            f"{len(cells)} values but {width} columns in the header "
                            f"(an unquoted {self.delimiter!r} in a value?)"
                        )
                        yield RowProblem(number, reason, values.get(id_column, "").strip() or None)
                        continue
                    yield seen.check(build_record(values, number, self.mapping), number)
            except csv.Error as err:
                raise SourceError(
                    f"{self.path} cannot be read past row {number + 1}: {err} "
                    "(look for an unbalanced quote there)"
                ) from err


@dataclass(frozen=True)
class JsonlSource:
    """A manifest with one JSON object per line."""

    path: Path
    mapping: ColumnMapping
    encoding: str
    kind: Literal["jsonl"] = "jsonl"

    @property
    def root(self) -> Path:
        """The manifest's folder."""
        return self.path.parent

    @classmethod
    def open(cls, path: Path, mapping: ColumnMapping) -> "JsonlSource":
        """Detect the encoding and check the first objects for an id key."""
        encoding = _detect_encoding(path)
        keys: dict[str, None] = {}
        lines = 0
        with path.open(encoding=encoding) as handle:
            for line in handle:
                if not line.strip():
                    continue
                lines += 1
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict):
                    keys.update(dict.fromkeys(obj))
                if mapping.column("id") in keys or lines >= _JSONL_PROBE_LINES:
                    break
        if not lines:
            raise SourceError(f"{path} is empty: expected one JSON object per line")
        if keys:
            _check_columns(path, mapping, tuple(keys), only_id=True)
        return cls(path, mapping, encoding)

    def records(self) -> Iterator[Row]:
        """Stream objects; row numbers are line numbers."""
        seen = _SeenIds()
        with self.path.open(encoding=self.encoding) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    yield RowProblem(number, f"not valid JSON: {err.msg} at column {err.colno}")
                    continue
                if not isinstance(obj, dict):
                    yield RowProblem(number, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                yield seen.check(build_record(obj, number, self.mapping), number)


@dataclass(frozen=True)
class FolderSource:
    """A folder of images, read recursively; `NAME.txt` beside an image is its caption."""

    root: Path
    kind: Literal["folder"] = "folder"

    @classmethod
    def open(cls, root: Path) -> "FolderSource":
        """Check that the folder holds at least one image."""
        manifests = sorted(
            path.name
            for path in root.iterdir()
            if path.suffix.lower() in MANIFEST_HINT_SUFFIXES and path.is_file()
        )
        advice = f"; to read its manifest, give the file ({', '.join(manifests)})"
        if next(_walk_images(root), None) is None:
            raise SourceError(
                f"{root} holds no images ({' '.join(IMAGE_SUFFIXES)})"
                + (advice if manifests else "")
            )
        if manifests:
            log.warning("reading %s as a plain image folder, without metadata%s", root, advice)
        return cls(root)

    def records(self) -> Iterator[Row]:
        """One record per image, in sorted path order; row numbers count images."""
        seen = _SeenIds()
        for number, image in enumerate(_walk_images(self.root), start=1):
            relative = image.relative_to(self.root)
            record_id = relative.with_suffix("").as_posix()
            try:
                caption = _read_sidecar(image)
            except OSError as err:
                reason = f"cannot read caption file for {relative}: {err.strerror or err}"
                yield RowProblem(number, reason, record_id)
                continue
            record = Record(
                id=record_id, image=relative.as_posix(), caption=caption, title=image.stem
            )
            yield seen.check(record, number)


class _SeenIds:
    """Turns the second and later rows with an id into RowProblems."""

    def __init__(self) -> None:
        self._first: dict[str, int] = {}

    def check(self, row: Row, number: int) -> Row:
        if isinstance(row, RowProblem):
            return row
        first = self._first.setdefault(row.id, number)
        if first != number:
            return RowProblem(
                number, f"duplicate id {row.id!r} (first seen on row {first})", row.id
            )
        return row


def _clean_header(names: list[str]) -> tuple[str, ...]:
    """Strip names, name blank columns `column_N`, and number repeated names."""
    header: list[str] = []
    for position, raw in enumerate(names, start=1):
        name = raw.strip() or f"column_{position}"
        base, copy = name, 1
        while name in header:
            copy += 1
            name = f"{base}_{copy}"
        if name != base:
            log.warning("column %r appears more than once; copy %d is read as %r", base, copy, name)
        header.append(name)
    return tuple(header)


def _check_columns(
    path: Path, mapping: ColumnMapping, header: tuple[str, ...], only_id: bool = False
) -> None:
    listed = ", ".join(header)
    id_column = mapping.column("id")
    if id_column not in header:
        raise SourceError(
            f"{path} has no id column {id_column!r}; its columns are: {listed}. "
            "Say which column holds a unique id with --map id=COLUMN"
        )
    missing = [
        f"{column!r} (for {field})"
        for field, column in mapping.columns.items()
        if column not in header
    ]
    if missing and not only_id:
        raise SourceError(f"{path} has no column {', '.join(missing)}; its columns are: {listed}")


def _detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252 or latin-1 with a warning.

    Raises:
        SourceError: the file is a spreadsheet workbook (xlsx, ods, xls), not text.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(WORKBOOK_MAGIC):
        raise SourceError(
            f"{path} is a spreadsheet workbook, not text: save it as CSV (UTF-8) and use that file"
        )
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "cp1252"):
        if _decodes_as(path, encoding):
            if encoding != "utf-8":
                log.warning("%s is not UTF-8; reading it as %s", path, encoding)
            return encoding
    log.warning("%s is not UTF-8; reading it as latin-1", path)
    return "latin-1"


def _decodes_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _detect_delimiter(sample: str) -> str:
    """The sniffed delimiter if the header has it, else the one the header has most of."""
    header = sample.splitlines()[0] if sample else ""
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if counts.get(sniffed, 0) > 0:
        return sniffed
    most = max(DELIMITERS, key=counts.__getitem__)
    return most if counts[most] > 0 else ","


def _walk_images(root: Path) -> Iterator[Path]:
    """Image files under `root` in sorted order, skipping hidden files and folders."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(folder) / name


def _read_sidecar(image: Path) -> str | None:
    sidecar = image.with_suffix(".txt")
    if not sidecar.is_file():
        return None
    data = sidecar.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding).strip() or None
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1").strip() or None
