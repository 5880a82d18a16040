"""The deployment files: compose.yaml, compose.cluster.yaml and .env.example.

Checked as data, without Docker: every service can be built or pulled, Qdrant
is pinned and health-checked, volumes are declared, and every VITRINE_*
variable they name is a real setting, each one documented in .env.example.
"""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("compose.yaml", "compose.cluster.yaml")
VARIABLE = re.compile(r"\b(VITRINE_[A-Z0-9_]+)\b")
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / name).read_text(encoding="utf-8")))


def setting_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    return {prefix + field.upper() for field in Settings.model_fields}


def strings(value: Any) -> list[str]:
    """Every key and string anywhere in a parsed YAML document."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [str(key), *strings(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return [value] if isinstance(value, str) else []


def qdrant_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("qdrant/qdrant")
    }


def env_example() -> list[str]:
    return (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_service_has_an_image_or_a_build(name: str) -> None:
    services = load(name)["services"]
    assert services
    for service, spec in services.items():
        assert "image" in spec or "build" in spec, service


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_qdrant_is_pinned_and_health_checked(name: str) -> None:
    nodes = qdrant_services(load(name))
    assert nodes, f"{name} runs no Qdrant"
    for node, spec in nodes.items():
        tag = str(spec["image"]).partition(":")[2]
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), f"{node}: pin a release, not {tag!r}"
        test = spec["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and "/readyz" in " ".join(test), node
        assert not any(tool in " ".join(test) for tool in ("curl", "wget")), "not in the image"


def test_both_files_deploy_the_same_qdrant_release() -> None:
    images = {
        spec["image"] for name in COMPOSE_FILES for spec in qdrant_services(load(name)).values()
    }
    assert len(images) == 1, images


def test_cluster_nodes_join_the_first() -> None:
    nodes = qdrant_services(load("compose.cluster.yaml"))
    assert len(nodes) == 3
    for spec in nodes.values():
        assert spec["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
    commands = [" ".join(spec["command"]) for spec in nodes.values()]
    assert sum("--bootstrap" not in command and "--uri" in command for command in commands) == 1
    assert sum("--bootstrap http://qdrant:6335" in command for command in commands) == 2


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_named_volumes_are_declared(name: str) -> None:
    compose = load(name)
    declared = set(compose.get("volumes") or {})
    used = {
        str(mount).split(":")[0]
        for spec in compose["services"].values()
        for mount in spec.get("volumes", [])
        if not str(mount).startswith((".", "/", "~"))
    }
    assert used and used <= declared, used - declared


def test_vitrine_services_share_one_data_volume() -> None:
    services = load("compose.yaml")["services"]
    apps = {name: spec for name, spec in services.items() if "build" in spec}
    assert set(apps) == {"worker", "ui", "finetune"}
    for name, spec in apps.items():
        assert "vitrine-data:/data" in spec["volumes"], name
        assert spec["environment"]["VITRINE_DATA_DIR"] == "/data", name
        assert spec["depends_on"]["qdrant"]["condition"] == "service_healthy", name
    assert services["ui"]["command"] == ["ui", "--host", "0.0.0.0", "--port", "8501"]
    assert services["worker"]["command"] == ["worker"]
    assert services["finetune"]["profiles"] == ["gpu"]
    devices = services["finetune"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_the_api_key_comes_from_the_env_file() -> None:
    compose = load("compose.yaml")["services"]
    assert "${QDRANT_API_KEY" in compose["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"]
    assert "${QDRANT_API_KEY" in compose["ui"]["environment"]["VITRINE_QDRANT_API_KEY"]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_names_only_real_settings(name: str) -> None:
    named = {match for text in strings(load(name)) for match in VARIABLE.findall(text)}
    assert named <= setting_names(), named - setting_names()


def test_env_example_documents_every_setting_and_only_settings() -> None:
    lines = env_example()
    documented = {match[1] for line in lines if (match := ASSIGNMENT.match(line))}
    vitrine = {name for name in documented if name.startswith("VITRINE_")}
    assert vitrine == setting_names(), vitrine ^ setting_names()
    assert documented - vitrine == {"QDRANT_API_KEY"}


def test_env_example_comments_every_variable() -> None:
    lines = env_example()
    for index, line in enumerate(lines):
        if ASSIGNMENT.match(line):
            above = lines[index - 1] if index else ""
            assert above.startswith("#") and not ASSIGNMENT.match(above), line


def test_env_example_sets_no_vitrine_variable() -> None:
    """Uncommented, an empty value would override a default (and the host CLI reads .env)."""
    assert not [line for line in env_example() if line.startswith("VITRINE_")]
