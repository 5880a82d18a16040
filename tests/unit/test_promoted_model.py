"""A promoted registry version becomes the model for new ingests, unless one is named."""

import json
from pathlib import Path

from services.models import LOCAL_DIR
from services.settings import Settings
from services.wiring import Services, promoted_folder


def promote(data_dir: Path, version: str) -> Path:
    folder = data_dir / "models" / version
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text("{}")
    (data_dir / "models" / "default.json").write_text(json.dumps({"version": version}))
    return folder


def test_promoted_version_is_used_when_no_model_is_named(tmp_path: Path) -> None:
    folder = promote(tmp_path, "prints-ft-1")
    services = Services(Settings(data_dir=tmp_path, _env_file=None))
    assert services.model_spec.name == f"{LOCAL_DIR}{folder}"
    copied = services.settings.with_overrides(batch_size=4)  # a flag does not pin the model
    assert Services(copied).model_spec.name == f"{LOCAL_DIR}{folder}"


def test_a_named_model_wins_over_the_promoted_one(tmp_path: Path) -> None:
    promote(tmp_path, "prints-ft-1")
    named = Settings(data_dir=tmp_path, model="ViT-B-16", _env_file=None)
    assert Services(named).model_spec.name == "ViT-B-16"
    flagged = Settings(data_dir=tmp_path, _env_file=None).with_overrides(model="ViT-L-14")
    assert Services(flagged).model_spec.name == "ViT-L-14"


def test_no_pointer_or_a_missing_folder_means_the_default(tmp_path: Path) -> None:
    assert promoted_folder(tmp_path / "models") is None
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "default.json").write_text(json.dumps({"version": "gone"}))
    assert promoted_folder(tmp_path / "models") is None
    assert Services(Settings(data_dir=tmp_path, _env_file=None)).model_spec.name == "ViT-B-32"
