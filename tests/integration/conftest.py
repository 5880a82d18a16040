"""An ingested sample collection, and the store backends the suite runs on.

Every test that takes `backend` or `searchable` runs on each backend behind
`services.store` — the conformance suite: the embedded Qdrant Edge store
(`edge`, the default), qdrant-client's local mode (`local`), and a real Qdrant
server started with testcontainers from the image that compose.yaml pins.
Where no Docker engine answers, the server runs are skipped and say why
(`pytest -rs`); `-m "not server"` leaves them out.
"""

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml
from docker.errors import DockerException
from qdrant_client import QdrantClient, models
from testcontainers.community.qdrant import QdrantContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

from ingest.runner import ingest_collection
from services.settings import Settings
from services.wiring import Services

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "vitrine-test-key"
BACKENDS = ("edge", "local", pytest.param("server", marks=pytest.mark.server))
EMBEDDED = ("edge", "local")


@dataclass(frozen=True)
class QdrantServer:
    url: str
    grpc_port: int
    api_key: str


def compose_qdrant_image() -> str:
    """The Qdrant image compose.yaml deploys, so the suite tests what is deployed."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return str(compose["services"]["qdrant"]["image"])


@pytest.fixture(scope="session")
def qdrant_server() -> Iterator[QdrantServer]:
    """One Qdrant server (with an API key) for the session; skips without a Docker engine."""
    try:
        docker.from_env().ping()
    except (DockerException, OSError) as error:
        pytest.skip(f"no Docker engine: {error}")
    # Ready when /readyz answers, as compose's health check has it (not on a log line).
    container = QdrantContainer(image=compose_qdrant_image(), api_key=API_KEY).waiting_for(
        HttpWaitStrategy(6333, "/readyz")
    )
    with container:
        yield QdrantServer(
            url=f"http://{container.get_container_host_ip()}:{container.exposed_rest_port}",
            grpc_port=int(container.exposed_grpc_port),
            api_key=API_KEY,
        )


def backend_settings(
    request: pytest.FixtureRequest, backend: str, data_dir: Path, model_dir: Path
) -> Settings:
    """Settings for the tiny model on `backend`; the server is started on first need."""
    server: QdrantServer | None = (
        request.getfixturevalue("qdrant_server") if backend == "server" else None
    )
    return Settings(
        data_dir=data_dir,
        model=f"local-dir:{model_dir}",
        device="cpu",
        batch_size=8,
        decode_workers=1,
        qdrant_url=server.url if server else None,
        qdrant_api_key=server.api_key if server else None,
        qdrant_grpc_port=server.grpc_port if server else 6334,
        store_backend="local" if backend == "local" else "edge",
        _env_file=None,
    )


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """`edge`, `local` or `server`: the store a test runs on."""
    return str(request.param)


@pytest.fixture(scope="session")
def searchable(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model_dir: Path,
    sample_manifest: Path,
) -> Iterator[Services]:
    """The 24-item sample ingested once into collection `sample` (do not modify it)."""
    data_dir = tmp_path_factory.mktemp(f"searchable-{backend}")
    services = Services(backend_settings(request, backend, data_dir, tiny_model_dir))
    summary = ingest_collection(services, "sample", sample_manifest)
    assert summary.embedded == 24, summary
    yield services
    services.close()


@pytest.fixture
def fresh_settings(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_model_dir: Path
) -> Iterator[Callable[[str], Settings]]:
    """Settings for an empty store on a backend, each call its own data folder.

    On the shared server, the collections and aliases a test made are removed
    afterwards, so tests do not see each other's.
    """
    servers: list[tuple[QdrantServer, set[str], set[str]]] = []
    folders = itertools.count()

    def make(backend: str) -> Settings:
        data_dir = tmp_path / f"{backend}-{next(folders)}"
        settings = backend_settings(request, backend, data_dir, tiny_model_dir)
        if backend == "server":
            server: QdrantServer = request.getfixturevalue("qdrant_server")
            servers.append((server, *_server_names(server)))
        return settings

    yield make
    for server, aliases, collections in servers:
        client = _client(server)
        now_aliases, now_collections = _server_names(server)
        if stale := now_aliases - aliases:
            client.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
                    for alias in stale
                ]
            )
        for collection in now_collections - collections:
            client.delete_collection(collection)
        client.close()


def _client(server: QdrantServer) -> QdrantClient:
    return QdrantClient(url=server.url, api_key=server.api_key, prefer_grpc=False)


def _server_names(server: QdrantServer) -> tuple[set[str], set[str]]:
    client = _client(server)
    try:
        aliases = {alias.alias_name for alias in client.get_aliases().aliases}
        collections = {collection.name for collection in client.get_collections().collections}
    finally:
        client.close()
    return aliases, collections
