"""Server mode: settings switch the store to a Qdrant server, faults are retried and
explained, collections follow the configured layout, aliases swap atomically.

Tests taking `backend` run on the embedded store and on a real server (skipped
without a Docker engine); the fault tests need no server at all.
"""

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from qdrant_client import QdrantClient, models
from typer.testing import CliRunner

from services.errors import StoreUnavailableError
from services.settings import Settings
from services.store import IMAGE_VECTOR, Store
from tests.integration.conftest import QdrantServer
from vitrine.cli import app

DIM = 8


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unit(index: int) -> list[float]:
    return [1.0 if position == index else 0.0 for position in range(DIM)]


def points(*indexes: int) -> list[models.PointStruct]:
    return [
        models.PointStruct(id=index + 1, vector={IMAGE_VECTOR: unit(index)}, payload={"n": index})
        for index in indexes
    ]


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
@pytest.mark.parametrize("prefer_grpc", [True, False], ids=["grpc", "rest"])
def test_unreachable_server_names_the_url_and_what_to_check(
    tmp_path: Path, prefer_grpc: bool
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path,
        qdrant_url=url,
        qdrant_grpc_port=port,
        qdrant_prefer_grpc=prefer_grpc,
        qdrant_retries=2,
        _env_file=None,
    )
    with pytest.raises(StoreUnavailableError) as raised:
        Store.open(settings)
    message = str(raised.value)
    assert url in message
    assert "Check that the server is running and reachable" in message
    assert "VITRINE_QDRANT_URL" in message and "VITRINE_QDRANT_API_KEY" in message


def test_transient_faults_are_retried_as_often_as_configured(tmp_path: Path) -> None:
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        raise ConnectionError("connection refused")

    client = QdrantClient(path=str(tmp_path / "store"))
    try:
        store = Store(client, location="http://qdrant.example:6333", retries=3)
        with pytest.raises(StoreUnavailableError, match="qdrant.example:6333"):
            store.call(flaky)
    finally:
        client.close()
    assert len(attempts) == 3


def test_write_consistency_cannot_exceed_replication() -> None:
    with pytest.raises(ValidationError, match="VITRINE_QDRANT_WRITE_CONSISTENCY"):
        Settings(qdrant_replication=1, qdrant_write_consistency=2, _env_file=None)


def test_collections_follow_the_configured_layout(
    backend: str, fresh_settings: Callable[[str], Settings]
) -> None:
    """Shards, on-disk storage and int8 quantization reach a server; embedded accepts them."""
    settings = fresh_settings(backend).with_overrides(
        qdrant_shards=2, qdrant_on_disk=True, qdrant_quantization="int8"
    )
    store = Store.open(settings)
    try:
        store.create_physical("layout__v1", DIM)
        store.upsert("layout__v1", points(0, 1, 2))
        hits = store.query("layout__v1", unit(1), query_filter=None, limit=1)
        assert [hit.id for hit in hits] == [2]
    finally:
        store.close()
    if backend == "server":
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        rest = QdrantClient(url=settings.qdrant_url, api_key=key, prefer_grpc=False)
        try:
            config = rest.get_collection("layout__v1").config
        finally:
            rest.close()
        assert config.params.shard_number == 2
        assert config.params.payload is not None
        assert config.params.payload.memory == models.Memory.COLD
        vectors = config.params.vectors
        assert isinstance(vectors, dict) and vectors[IMAGE_VECTOR].memory == models.Memory.COLD
        assert isinstance(config.quantization_config, models.ScalarQuantization)
        assert config.quantization_config.scalar.type == models.ScalarType.INT8


def test_alias_swap_keeps_the_data_of_both_versions(
    backend: str, fresh_settings: Callable[[str], Settings]
) -> None:
    store = Store.open(fresh_settings(backend))
    try:
        store.create_physical("swap__v1", DIM)
        store.create_physical("swap__v2", DIM)
        store.upsert("swap__v1", points(0, 1))
        store.upsert("swap__v2", points(2, 3, 4))
        store.point_alias("swap", "swap__v1")
        assert store.resolve("swap") == "swap__v1"
        assert store.count("swap") == 2

        store.point_alias("swap", "swap__v2")
        assert store.aliases() == {"swap": "swap__v2"}
        assert store.count("swap") == 3
        assert [hit.id for hit in store.query("swap", unit(3), query_filter=None, limit=1)] == [4]
        assert store.count("swap__v1") == 2  # the old version stays for rollback
        assert {int(str(p.id)) for p in store.scroll("swap__v1")} == {1, 2}

        store.point_alias("swap", "swap__v1")
        assert store.resolve("swap") == "swap__v1"
        assert store.count("swap__v2") == 3
    finally:
        store.close()


@pytest.mark.server
def test_a_wrong_api_key_is_explained(qdrant_server: QdrantServer, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        qdrant_url=qdrant_server.url,
        qdrant_grpc_port=qdrant_server.grpc_port,
        qdrant_api_key="not-the-key",
        qdrant_prefer_grpc=False,
        qdrant_retries=1,
        _env_file=None,
    )
    with pytest.raises(StoreUnavailableError, match="VITRINE_QDRANT_API_KEY"):
        Store.open(settings)


@pytest.mark.server
def test_every_command_uses_the_server_from_the_environment(
    qdrant_server: QdrantServer,
    fresh_settings: Callable[[str], Settings],
    tiny_model_dir: Path,
    sample_manifest: Path,
    tmp_path: Path,
) -> None:
    fresh_settings("server")  # removes what this test creates on the server
    env = {
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_QDRANT_URL": qdrant_server.url,
        "VITRINE_QDRANT_API_KEY": qdrant_server.api_key,
        "VITRINE_QDRANT_GRPC_PORT": str(qdrant_server.grpc_port),
        "VITRINE_MODEL": f"local-dir:{tiny_model_dir}",
        "VITRINE_DEVICE": "cpu",
        "VITRINE_DECODE_WORKERS": "1",
    }
    runner = CliRunner()
    ingested = runner.invoke(
        app, ["ingest", str(sample_manifest), "--collection", "cli-sample", "--json"], env=env
    )
    assert ingested.exit_code == 0, ingested.output
    listed = runner.invoke(app, ["collections", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "cli-sample" in listed.output
    found = runner.invoke(
        app, ["search", "-c", "cli-sample", "--text", "a lion", "--json"], env=env
    )
    assert found.exit_code == 0, found.output
    client = QdrantClient(url=qdrant_server.url, api_key=qdrant_server.api_key)
    try:
        assert "cli-sample" in {alias.alias_name for alias in client.get_aliases().aliases}
        assert not (tmp_path / "data" / "qdrant").exists()  # nothing went to an embedded store
    finally:
        client.close()
