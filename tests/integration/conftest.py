"""An ingested sample collection, shared read-only by the search tests."""

from pathlib import Path

import pytest

from ingest.runner import ingest_collection
from services.settings import Settings
from services.wiring import Services


@pytest.fixture(scope="session")
def searchable(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, sample_manifest: Path) -> Services:
    """The 24-item sample ingested once into collection `sample` (do not modify it)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("searchable"),
        model=f"local-dir:{tiny_model_dir}",
        device="cpu",
        batch_size=8,
        decode_workers=1,
        _env_file=None,
    )
    services = Services(settings)
    summary = ingest_collection(services, "sample", sample_manifest)
    assert summary.embedded == 24, summary
    yield services
    services.close()
