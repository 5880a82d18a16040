"""Every embedded backend answers alike, and the Edge store is shared between processes.

The backend-parametrised tests (`searchable`, `backend`) already pin exact ids on
each backend; here the same requests go to the Edge store and the local mode
side by side and must come back with the same hits, scores and facets.
"""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from ingest.runner import ingest_collection
from services.filters import Filters
from services.search import SearchRequest, SearchResult
from services.settings import Settings
from services.wiring import Services
from tests.support.sample_data import sample_items, write_sample_collection

REQUESTS = {
    "text": dict(text="a red circle"),
    "text + iconclass": dict(text="animal", filters=Filters(iconclass=("25F",))),
    "text + years": dict(text="a print", filters=Filters(years=(1500, 1650))),
    "like an item": dict(like=("item-003",)),
    "like + negative": dict(like=("item-003",), negative=("a blue square",)),
    "text - negative": dict(text="a red circle", negative=("a green triangle",)),
}


@pytest.fixture(scope="module")
def side_by_side(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, sample_manifest: Path
) -> Iterator[dict[str, Services]]:
    """The sample ingested into an Edge store and a local-mode store."""
    opened: dict[str, Services] = {}
    for backend in ("edge", "local"):
        settings = Settings(
            data_dir=tmp_path_factory.mktemp(backend),
            model=f"local-dir:{tiny_model_dir}",
            device="cpu",
            batch_size=8,
            decode_workers=1,
            store_backend=backend,  # type: ignore[arg-type]
            _env_file=None,
        )
        opened[backend] = Services(settings)
        assert ingest_collection(opened[backend], "sample", sample_manifest).embedded == 24
    yield opened
    for services in opened.values():
        services.close()


def answer(services: Services, request: dict[str, object]) -> SearchResult:
    return services.searcher.search(SearchRequest(collection="sample", limit=10, **request))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(REQUESTS))
def test_edge_and_local_mode_answer_alike(side_by_side: dict[str, Services], name: str) -> None:
    edge, local = (answer(side_by_side[b], REQUESTS[name]) for b in ("edge", "local"))
    assert [hit.score for hit in edge.hits] == pytest.approx(
        [hit.score for hit in local.hits], abs=1e-4
    )
    assert _ranked(edge) == _ranked(local)
    assert edge.facets == local.facets


def _ranked(result: SearchResult) -> list[set[str]]:
    """Hit ids grouped by score, so that ties may come back in either order."""
    groups: list[set[str]] = []
    last: float | None = None
    for hit in result.hits:
        if last is None or abs(hit.score - last) > 1e-4:
            groups.append(set())
        groups[-1].add(hit.id)
        last = hit.score
    return groups


def test_an_image_query_answers_alike(side_by_side: dict[str, Services], tmp_path: Path) -> None:
    picture = tmp_path / "query.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(picture)
    request = dict(image=Image.open(picture).convert("RGB"))
    edge, local = (answer(side_by_side[b], request) for b in ("edge", "local"))
    assert _ranked(edge) == _ranked(local)


# -- two processes on one Edge store --------------------------------------------------


@pytest.fixture
def shared_edge(settings: Settings, sample_manifest: Path) -> Iterator[Services]:
    services = Services(settings)
    assert ingest_collection(services, "sample", sample_manifest).embedded == 24
    yield services
    services.close()


def vitrine(env: dict[str, str], *args: str) -> Callable[[], subprocess.Popen[str]]:
    return lambda: subprocess.Popen(
        [sys.executable, "-m", "vitrine", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_process_ingests_while_this_one_keeps_searching(
    shared_edge: Services, settings: Settings, tmp_path: Path
) -> None:
    """The UI (this process, the store open and in use) and a command in another
    process work on the same collection at the same time; each sees the other's data."""
    more = write_sample_collection(tmp_path / "more", count=36)
    env = {
        **os.environ,
        "VITRINE_DATA_DIR": str(settings.data_dir),
        "VITRINE_MODEL": settings.model,
        "VITRINE_DECODE_WORKERS": "1",
        "VITRINE_STORE_BACKEND": "edge",
        "HF_HUB_OFFLINE": "1",
    }
    process = vitrine(env, "ingest", str(more), "--collection", "sample", "--json")()
    searches = 0
    while process.poll() is None:
        result = answer(shared_edge, dict(text="a red circle"))
        assert len(result.hits) == 10
        searches += 1
    _, errors = process.communicate()
    assert process.returncode == 0, errors
    assert searches > 0
    assert shared_edge.store.info("sample").points == 36
    newest = {item.id for item in sample_items(36)} - {item.id for item in sample_items(24)}
    stored = {
        str((record.payload or {})["record_id"])
        for record in shared_edge.store.scroll(shared_edge.store.resolve("sample"))
    }
    assert newest <= stored
