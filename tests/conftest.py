"""Shared fixtures: the tiny model folder, a generated sample collection, settings."""

from pathlib import Path

import pytest

from services.settings import Settings
from tests.support.sample_data import write_sample_collection
from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def sample_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_collection(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def settings(tmp_path: Path, tiny_model_dir: Path) -> Settings:
    """Settings for a fresh data folder, the tiny model, inline decoding."""
    return Settings(
        data_dir=tmp_path / "data",
        model=f"local-dir:{tiny_model_dir}",
        device="cpu",
        batch_size=8,
        decode_workers=1,
        _env_file=None,
    )
