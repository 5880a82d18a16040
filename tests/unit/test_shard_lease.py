"""The lease that lets several processes share an Edge shard: real shards, real processes."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import qdrant_edge as edge

from services.errors import StoreUnavailableError
from services.shard_lease import WAITING_PREFIX, ShardLease, others_waiting

HOLD_LOCK = """
import fcntl, sys, time
stream = open(sys.argv[1], "ab")
fcntl.flock(stream, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def make_shard(folder: Path) -> None:
    config = edge.EdgeConfig(
        vectors={"v": edge.EdgeVectorParams(size=2, distance=edge.Distance.Cosine)}
    )
    edge.EdgeShard.create(str(folder), config).close()


def lease_on(tmp_path: Path, wait_seconds: float = 5.0) -> ShardLease:
    shard = tmp_path / "shard"
    if not shard.exists():
        make_shard(shard)
    return ShardLease(
        tmp_path / "lease", lambda: edge.EdgeShard.load(str(shard)), wait_seconds=wait_seconds
    )


def hold_lock_elsewhere(lock: Path, seconds: float) -> subprocess.Popen[str]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_the_shard_stays_open_between_operations_and_closes_on_release(tmp_path: Path) -> None:
    lease = lease_on(tmp_path)
    with lease.use() as first:
        pass
    with lease.use() as second:
        assert second is first
    lease.release()
    assert not lease.is_open
    with lease.use() as again:
        assert again.count(edge.CountRequest()) == 0
    lease.release()


def test_a_waiting_process_gets_the_shard_when_the_holder_lets_go(tmp_path: Path) -> None:
    lease = lease_on(tmp_path)
    holder = hold_lock_elsewhere(tmp_path / "lease" / "lease.lock", seconds=1.0)
    started = time.monotonic()
    with lease.use() as shard:
        assert shard.count(edge.CountRequest()) == 0
    assert time.monotonic() - started >= 0.5  # it waited for the other process
    assert not list((tmp_path / "lease").glob(f"{WAITING_PREFIX}*"))  # its marker is gone
    lease.release()
    holder.wait()


def test_a_shard_busy_too_long_is_explained(tmp_path: Path) -> None:
    lease = lease_on(tmp_path, wait_seconds=0.3)
    holder = hold_lock_elsewhere(tmp_path / "lease" / "lease.lock", seconds=5.0)
    try:
        with (
            pytest.raises(StoreUnavailableError, match="busy in another process"),
            lease.use(),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_the_holder_hands_over_when_another_process_waits(tmp_path: Path) -> None:
    lease = lease_on(tmp_path)
    with lease.use():
        pass
    assert lease.is_open
    waiter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "lease" / f"{WAITING_PREFIX}{waiter.pid}").touch()
        lease.release_if_wanted()
        assert not lease.is_open
    finally:
        waiter.kill()
        waiter.wait()


def test_markers_of_dead_processes_are_cleared(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    marker = tmp_path / f"{WAITING_PREFIX}{finished.stdout.strip()}"
    marker.touch()
    assert not others_waiting(tmp_path)
    assert not marker.exists()
