"""Moving a collection between stores: export to one file, import under another name.

The round trip runs for every pair of backends (embedded and server, the
server ones skipped without Docker): same points, vectors and payloads, and
search answers the same.
"""

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from services.collection_file import TransferFileError
from services.filters import Filters
from services.search import SearchRequest
from services.settings import Settings
from services.store import point_id
from services.transfer import export_collection, import_collection
from services.wiring import Services
from tests.integration.conftest import BACKENDS
from tests.support.sample_data import sample_items

COPY = "sample-copy"


def by_record(services: Services, alias: str) -> dict[str, tuple[dict, dict]]:  # type: ignore[type-arg]
    """record id -> (vectors, payload) of every point behind `alias`."""
    physical = services.store.resolve(alias)
    return {
        str(point.payload["record_id"]): (point.vector, point.payload)  # type: ignore[index]
        for point in services.store.scroll(physical, with_vectors=True)
    }


def ranked(services: Services, alias: str, **request: object) -> list[tuple[str, float]]:
    result = services.searcher.search(SearchRequest(collection=alias, limit=50, **request))  # type: ignore[arg-type]
    return [(hit.id, hit.score) for hit in result.hits]


def tiers(hits: list[tuple[str, float]]) -> list[tuple[float, frozenset[str]]]:
    """Hits grouped by equal score: the sample has duplicate images, whose order is arbitrary."""
    grouped: list[tuple[float, set[str]]] = []
    for hit, score in hits:
        if grouped and abs(grouped[-1][0] - score) < 1e-6:
            grouped[-1][1].add(hit)
        else:
            grouped.append((score, {hit}))
    return [(score, frozenset(ids)) for score, ids in grouped]


def same_ranking(left: list[tuple[str, float]], right: list[tuple[str, float]]) -> None:
    assert [ids for _, ids in tiers(left)] == [ids for _, ids in tiers(right)]
    assert [score for _, score in left] == pytest.approx([score for _, score in right], abs=1e-5)


@pytest.fixture(scope="module")
def exported(searchable: Services, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "sample.vitrine.jsonl.gz"
    summary = export_collection(searchable, "sample", path)
    assert summary.points == 24
    return path


@pytest.mark.parametrize("target", BACKENDS)
def test_round_trip_keeps_points_vectors_payloads_and_answers(
    searchable: Services,
    exported: Path,
    target: str,
    fresh_settings: Callable[[str], Settings],
) -> None:
    other = Services(fresh_settings(target))
    try:
        summary = import_collection(other, exported, name=COPY)
        assert (summary.collection, summary.points, summary.notes) == (COPY, 24, [])
        assert (
            other.store.resolve(COPY) == f"{COPY}__{searchable.store.info('sample').model_version}"
        )

        before, after = by_record(searchable, "sample"), by_record(other, COPY)
        assert set(before) == set(after) == {item.id for item in sample_items()}
        for record_id, (vectors, payload) in before.items():
            moved_vectors, moved_payload = after[record_id]
            assert moved_payload == {**payload, "collection": COPY}
            assert set(moved_vectors) == set(vectors)
            for name, vector in vectors.items():
                np.testing.assert_allclose(moved_vectors[name], vector, atol=1e-6)
        ids = {str(point.id) for point in other.store.scroll(other.store.resolve(COPY))}
        assert ids == {point_id(COPY, record_id) for record_id in before}

        same_ranking(
            ranked(searchable, "sample", text="a red circle"),
            ranked(other, COPY, text="a red circle"),
        )
        lions = Filters(iconclass=("25F",))
        same_ranking(
            ranked(searchable, "sample", text="animal", filters=lions),
            ranked(other, COPY, text="animal", filters=lions),
        )
        like = sample_items()[5].id
        same_ranking(ranked(searchable, "sample", like=(like,)), ranked(other, COPY, like=(like,)))
        state = other.states.load(COPY)
        source = searchable.states.load("sample")
        assert state is not None and source is not None and state.source == source.source
    finally:
        other.close()


def test_export_file_is_json_lines_with_header_and_end(
    exported: Path, searchable: Services
) -> None:
    with gzip.open(exported, "rt", encoding="utf-8") as stream:
        lines = [json.loads(line) for line in stream]
    header, points, end = lines[0], lines[1:-1], lines[-1]
    assert header["format"] == "vitrine-collection" and header["version"] == 1
    assert header["collection"] == "sample"
    assert header["model_version"] == searchable.store.info("sample").model_version
    assert end == {"end": True, "points": 24}
    assert len(points) == 24 and all({"id", "vectors", "payload"} <= set(p) for p in points)
    assert not list(exported.parent.glob(".*.tmp"))  # the temporary file was renamed away


def test_a_cut_short_file_is_refused_and_a_rerun_completes(
    exported: Path, fresh_settings: Callable[[str], Settings], tmp_path: Path
) -> None:
    with gzip.open(exported, "rt", encoding="utf-8") as stream:
        lines = stream.readlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:10]), encoding="utf-8")  # plain JSON Lines read as well
    other = Services(fresh_settings("edge"))
    try:
        with pytest.raises(TransferFileError, match="incomplete"):
            import_collection(other, cut)
        assert not other.store.exists("sample")  # searches never see the partial import
        assert import_collection(other, exported).points == 24
        assert other.store.info("sample").points == 24
    finally:
        other.close()


def test_import_refuses_an_existing_name_and_foreign_files(
    exported: Path, fresh_settings: Callable[[str], Settings], tmp_path: Path
) -> None:
    other = Services(fresh_settings("edge"))
    try:
        import_collection(other, exported)
        with pytest.raises(TransferFileError, match="already a collection named 'sample'"):
            import_collection(other, exported)
        foreign = tmp_path / "foreign.jsonl"
        foreign.write_text('{"id": 1}\n', encoding="utf-8")
        with pytest.raises(TransferFileError, match="not a vitrine collection file"):
            import_collection(other, foreign, name="other")
        with pytest.raises(TransferFileError, match="does not exist"):
            import_collection(other, tmp_path / "missing.jsonl.gz", name="other")
    finally:
        other.close()


def test_cli_import_then_export(exported: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    env = {
        **os.environ,
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_MODEL": f"local-dir:{tiny_model_dir}",
        "VITRINE_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("VITRINE_QDRANT_URL", None)

    def vitrine(*args: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "vitrine", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    assert vitrine("collections", "import", str(exported), "--name", COPY)["points"] == 24
    again = tmp_path / "again.jsonl"
    assert vitrine("collections", "export", COPY, str(again))["points"] == 24
    assert again.read_text(encoding="utf-8").startswith('{"format":"vitrine-collection"')
