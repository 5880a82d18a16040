"""The collection file format: exact vectors, pages, atomic writes, refused damage."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from services.collection_file import (
    TransferFileError,
    decode_vector,
    encode_vector,
    read_collection_file,
    write_collection_file,
)


def write(path: Path, count: int) -> None:
    with write_collection_file(path, {"collection": "c", "model_version": "v"}) as point:
        for index in range(count):
            point({"id": str(index), "vectors": {}, "payload": {"n": index}})


def read_all(path: Path, page: int = 3) -> tuple[dict[str, object], list[list[int]]]:
    with read_collection_file(path, page) as (header, pages):
        return header, [[entry["payload"]["n"] for entry in chunk] for chunk in pages]


def test_vectors_survive_exactly() -> None:
    vector = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    assert decode_vector(encode_vector(vector.tolist())) == vector.tolist()


@pytest.mark.parametrize("name", ["points.jsonl", "points.jsonl.gz"])
def test_points_come_back_in_pages(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write(path, 7)
    header, pages = read_all(path)
    assert header["format"] == "vitrine-collection" and header["collection"] == "c"
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_an_empty_collection_is_a_whole_file(tmp_path: Path) -> None:
    write(tmp_path / "empty.jsonl", 0)
    assert read_all(tmp_path / "empty.jsonl")[1] == []


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "points.jsonl"
    with pytest.raises(RuntimeError), write_collection_file(path, {}) as point:
        point({"id": "1"})
        raise RuntimeError("store went away")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keep", [1, 5, 8])
def test_a_file_without_its_end_is_refused(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "points.jsonl"
    write(path, 7)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:keep]), encoding="utf-8")
    with pytest.raises(TransferFileError, match="incomplete"):
        read_all(path)


def test_an_end_that_counts_differently_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "points.jsonl"
    write(path, 4)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[-1] = json.dumps({"end": True, "points": 9}) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(TransferFileError, match="incomplete"):
        read_all(path)


def test_a_cut_gzip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "points.jsonl.gz"
    write(path, 50)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TransferFileError, match="cut short"):
        read_all(path)


def test_foreign_and_newer_files_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"id": 1}\n', encoding="utf-8")
    with pytest.raises(TransferFileError, match="not a vitrine collection file"):
        read_all(foreign)
    newer = tmp_path / "newer.jsonl.gz"
    with gzip.open(newer, "wt", encoding="utf-8") as stream:
        stream.write(json.dumps({"format": "vitrine-collection", "version": 2}) + "\n")
    with pytest.raises(TransferFileError, match="format version 2"):
        read_all(newer)
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\xff\xfe not text")
    with pytest.raises(TransferFileError):
        read_all(garbage)
