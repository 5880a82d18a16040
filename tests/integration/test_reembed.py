"""Re-embedding a collection with a new model version, without downtime.

Searches keep answering while the new physical collection is built and the
alias switched; a worker killed mid-way resumes without re-embedding what it
had done; the old version stays for rollback, older ones go beyond --keep.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.job_handlers import enqueue_ingest, enqueue_reembed, enqueue_reembed_all, job_handlers
from ingest.runner import ingest_collection
from services.jobs import Jobs
from services.search import SearchRequest
from services.settings import Settings
from services.versions import rollback
from services.wiring import Services
from tests.support.sample_data import write_sample_collection
from tests.support.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny model (another seed): a second model version."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-v2", seed=1)


def test_searches_answer_throughout_the_swap(
    settings: Settings, sample_manifest: Path, second_model_dir: Path
) -> None:
    services = Services(settings)
    ingest_collection(services, "sample", sample_manifest)
    old_version = services.store.info("sample").model_version
    answers: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_in_a_loop() -> None:
        while not stop.is_set():
            try:
                result = services.searcher.search(
                    SearchRequest(collection="sample", text="a red circle", limit=5)
                )
                versions = {hit.payload["model_version"] for hit in result.hits}
                answers.append(versions.pop() if len(versions) == 1 and result.hits else "bad")
            except BaseException as error:  # noqa: BLE001 - any failure is the finding
                errors.append(error)
                return

    searcher = threading.Thread(target=search_in_a_loop)
    searcher.start()
    while len(answers) < 3 and searcher.is_alive():
        time.sleep(0.01)
    # a registry version, as `vitrine models promote` queues it for every collection
    registered = shutil.copytree(second_model_dir, settings.registry_path / "ft-v2")
    (registered / "model_card.json").write_text(json.dumps({"version": "ft-v2"}))
    [job] = enqueue_reembed_all(services, "ft-v2")
    Jobs(settings.data_dir, job_handlers(services)).work(until_idle=True, poll=0.05)
    switched_at = len(answers)
    while len(answers) < switched_at + 3 and searcher.is_alive():
        time.sleep(0.01)
    stop.set()
    searcher.join()
    services.close()

    assert not errors, errors
    new_version = "ft-v2"
    assert services.jobs.table.get(job.id).result["to_version"] == new_version  # type: ignore[index]
    assert set(answers) == {old_version, new_version}, set(answers)
    first_new = answers.index(new_version)
    assert answers[:first_new] == [old_version] * first_new
    assert answers[first_new:] == [new_version] * (len(answers) - first_new)


def test_rollback_and_keep(
    settings: Settings, sample_manifest: Path, second_model_dir: Path, tiny_model_dir: Path
) -> None:
    services = Services(settings)
    ingest_collection(services, "sample", sample_manifest)
    first = services.store.resolve("sample")
    jobs = Jobs(settings.data_dir, job_handlers(services))
    enqueue_reembed(services, "sample", f"local-dir:{second_model_dir}")
    jobs.work(until_idle=True, poll=0.05)
    second = services.store.resolve("sample")
    assert second != first and services.store.count(second) == 24
    # a later (scheduled) re-ingest uses the model the collection is now built with
    ingest = enqueue_ingest(services, "sample")
    jobs.work(until_idle=True, poll=0.05)
    assert services.jobs.table.get(ingest.id).status == "done"
    assert services.states.load("sample").history[-1].unchanged == 24  # type: ignore[union-attr]

    assert rollback(services, "sample").to_physical == first
    assert services.store.resolve("sample") == first
    # forward again to the kept version: nothing is re-embedded, only the alias moves
    job = enqueue_reembed(services, "sample", f"local-dir:{second_model_dir}", keep=0)
    jobs.work(until_idle=True, poll=0.05)
    result = services.jobs.table.get(job.id).result or {}
    assert (result["embedded"], result["reused"], result["switched"]) == (0, 24, True)
    assert result["deleted"] == [first]
    assert services.store.physical_collections("sample") == [second]
    assert [s.reason for s in services.states.load("sample").switches][-2:] == [  # type: ignore[union-attr]
        "rollback",
        f"re-embed with {result['to_version']}",
    ]
    services.close()


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stream:
        return subprocess.Popen(
            [sys.executable, "-m", "vitrine", "worker", "--until-idle", "--poll", "0.2"],
            cwd=log.parent,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )


def test_a_killed_worker_resumes_the_reembed(
    tmp_path: Path, settings: Settings, tiny_model_dir: Path, second_model_dir: Path
) -> None:
    manifest = write_sample_collection(tmp_path / "source", count=96)
    services = Services(settings)
    ingest_collection(services, "big", manifest)
    old = services.store.resolve("big")
    services.close()
    job = enqueue_reembed(Services(settings), "big", f"local-dir:{second_model_dir}")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VITRINE_DATA_DIR": str(settings.data_dir),
        "VITRINE_MODEL": f"local-dir:{tiny_model_dir}",
        "VITRINE_DEVICE": "cpu",
        "VITRINE_BATCH_SIZE": "8",
        "VITRINE_DECODE_WORKERS": "1",
    }
    log = tmp_path / "worker.log"
    table = Services(settings).jobs.table

    worker = _worker(env, log)
    deadline = time.monotonic() + 90
    while (seen := table.get(job.id)).done < 24 and time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text()
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed = table.get(job.id)
    assert killed.status == "running" and 24 <= killed.done < 96, (seen, log.read_text())

    restarted = _worker(env, log)
    assert restarted.wait(timeout=120) == 0, log.read_text()

    done = table.get(job.id)
    assert done.status == "done", (done, log.read_text())
    assert done.attempts == 2
    result = done.result or {}
    assert result["reused"] >= killed.done
    assert result["embedded"] + result["reused"] == 96
    lines = [text for _, text in table.logs(job.id)]
    assert sum(text.startswith("alias switched") for text in lines) == 1
    assert any("resuming" in text for text in lines)
    services = Services(settings)
    new = services.store.resolve("big")
    assert new != old and services.store.count(new) == services.store.count(old) == 96
    state = services.states.load("big")
    assert state is not None and [s.to_physical for s in state.switches] == [new]
    services.close()
