"""Concurrent registrations and alias moves, with real threads and real processes on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from registry.errors import NotFound
from registry.store import SqlStore
from tests.registry.helpers import ready_model

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each child waits for "go" on stdin, then opens the store (so fresh stores are migrated concurrently too),
# logs its own model and registers it several times.
CHILD = """
import json, sys
from registry.entities import LoggedModel, ModelStatus, new_model_id
from registry.store import SqlStore
url, count = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
with SqlStore(url) as store:
    model = store.create_logged_model(
        LoggedModel(model_id=new_model_id(), name="bot", artifact_location="models/x")
    )
    store.finish_logged_model(model.model_id, ModelStatus.READY)
    versions = [store.create_model_version("bot", model.model_id).version for _ in range(count)]
print(json.dumps(versions), flush=True)
"""


def test_threads_registering_at_once_get_distinct_consecutive_versions(store: SqlStore) -> None:
    model = ready_model(store)
    threads, per_thread = 8, 5
    barrier = threading.Barrier(threads)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register() -> None:
        barrier.wait()
        try:
            for _ in range(per_thread):
                version = store.create_model_version("bot", model.model_id).version
                with lock:
                    results.append(version)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=register) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(results) == list(range(1, threads * per_thread + 1))


def test_processes_registering_at_once_get_distinct_versions(store_url: str) -> None:
    """Fresh store: the children race on the schema migration and on version numbers."""
    processes, per_process = 2, 6
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, store_url, str(per_process)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    outputs = [child.communicate("go\n", timeout=60) for child in children]
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    versions = [v for out, _ in outputs for v in json.loads(out.strip().splitlines()[-1])]
    assert sorted(versions) == list(range(1, processes * per_process + 1))
    with SqlStore(store_url) as store:
        assert store.get_registered_model("bot").latest_version == processes * per_process


def test_alias_moves_are_atomic_for_concurrent_readers(store: SqlStore) -> None:
    model = ready_model(store)
    for _ in range(4):
        store.create_model_version("bot", model.model_id)
    store.set_model_alias("bot", "champion", 1)
    done = threading.Event()
    seen: set[int] = set()
    failures: list[BaseException] = []

    def read() -> None:
        while not done.is_set():
            try:
                seen.add(store.get_model_version_by_alias("bot", "champion").version)
            except (NotFound, AssertionError) as exc:
                failures.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        for step in range(60):
            store.set_model_alias("bot", "champion", step % 4 + 1)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert seen <= {1, 2, 3, 4}
    assert store.get_model_version_by_alias("bot", "champion").version == 4
