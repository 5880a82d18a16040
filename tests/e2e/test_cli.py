"""The `vitrine` command as a user runs it: a real process, real store, tiny model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitrine", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def env(tmp_path: Path, tiny_model_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_MODEL": f"local-dir:{tiny_model_dir}",
        "VITRINE_DECODE_WORKERS": "2",
        "HF_HUB_OFFLINE": "1",
    }


def test_ingest_search_and_collections_end_to_end(
    env: dict[str, str], sample_manifest: Path
) -> None:
    first = run(env, "ingest", str(sample_manifest), "--collection", "prints", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert {"seen", "embedded", "unchanged", "failed", "seconds"} <= set(summary)
    assert (summary["seen"], summary["embedded"], summary["failed"]) == (24, 24, 0)

    again = run(env, "ingest", "--collection", "prints", "--json")  # source remembered
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["embedded"] == 0
    assert json.loads(again.stdout)["unchanged"] == 24

    found = run(
        env,
        "search",
        "-c",
        "prints",
        "--text",
        "a lion",
        "--iconclass",
        "25F",
        "--limit",
        "50",
        "--json",
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and all(set(hit) == {"id", "score", "payload"} for hit in hits)
    assert all(any(p == "25F" for p in hit["payload"]["iconclass_path"]) for hit in hits)

    listing = json.loads(run(env, "collections", "list", "--json").stdout)
    assert [entry["name"] for entry in listing] == ["prints"]
    info = json.loads(run(env, "collections", "info", "prints", "--json").stdout)
    assert info["points"] == 24 and info["vector_size"] == 32
    assert info["physical_collection"] == f"prints__{info['model_version']}"

    table = run(env, "search", "-c", "prints", "--text", "a lion", "--facets")
    assert table.returncode == 0 and "iconclass_top" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "no/such/manifest.csv", "--collection", "x"], "does not exist"),
        (["ingest", "{manifest}", "--collection", "x", "--map", "colour=caption"], "colour"),
        (["ingest", "{manifest}", "--collection", "bad__name"], "cannot name a collection"),
        (["search", "-c", "nothing", "--text", "x"], "No collection named"),
        (["search", "-c", "nothing", "--years", "1600-1700", "--text", "x"], "START:END"),
    ],
)
def test_user_mistakes_give_one_clear_line(
    env: dict[str, str], sample_manifest: Path, args: list[str], message: str
) -> None:
    result = run(env, *[arg.replace("{manifest}", str(sample_manifest)) for arg in args])
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_offline_model_says_what_to_do(
    env: dict[str, str], sample_manifest: Path, tmp_path: Path
) -> None:
    offline = {
        **env,
        "VITRINE_MODEL": "ViT-B-32",
        "VITRINE_PRETRAINED": "laion2b_s34b_b79k",
        "HF_HOME": str(tmp_path),
    }
    result = run(offline, "ingest", str(sample_manifest), "--collection", "prints")
    assert result.returncode == 1
    assert "ViT-B-32 (laion2b_s34b_b79k)" in result.stderr
    assert "local-dir:" in result.stderr
    assert "Traceback" not in result.stderr
