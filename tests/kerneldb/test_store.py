"""The store, on SQLite and on a real PostgreSQL: aggregation, bounds, lookups, concurrency, reopening,
and the space-membership shortcut the service validates schedules with."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import Postgres

from nnjit.dialects.web import DEFAULT_LIMITS, LimitsAttr, Schedule
from nnjit.kerneldb.schema import DeviceInfo, Submission
from nnjit.kerneldb.space import UNBOUNDED, in_space
from nnjit.kerneldb.store import SqliteStore, Store, StoreBusy, StoreError, open_store, sqlite_path
from nnjit.tuner.spaces import SPACES
from nnjit.tuner.wasm_spaces import WASM_SPACES, wasm_matmul_schedules

DEVICE = DeviceInfo("wasm-00000000000000aa", "wasm", {"v128_registers": 16})
OTHER = DeviceInfo("wasm-00000000000000bb", "wasm", {"v128_registers": 16})
ELEMENTWISE = [Schedule((1, 1, 1), (0, 0, 0), (1, 1), v, u, False) for v in (1, 4) for u in (1, 2, 4, 8)]


def record(i: int, schedule: int = 0, median: float = 1e-5, version: str = "0.1.0") -> Submission:
    return Submission(f"elementwise:{i:024x}", "elementwise", ELEMENTWISE[schedule], median, 2e-5, version)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()


def test_aggregates_are_medians_of_the_latest_samples(store_url: str) -> None:
    with open_store(store_url, max_samples=4) as store:
        medians = [5e-5, 1e-5, 3e-5, 9e-5, 2e-5, 4e-5]
        for m in medians:
            assert store.submit(DEVICE, [record(1, median=m)], client="127.0.0.1") == 1
        store.submit(DEVICE, [record(1, schedule=1, median=7e-5)], client="127.0.0.1")
        rows = {r.schedule: r for r in store.lookup("wasm", [record(1).signature], None)}
        assert len(rows) == 2
        first = next(r for r in rows.values() if r.submissions == 6)
        assert first.median == pytest.approx(statistics.median(medians[-4:]))  # bounded: the latest 4
        assert first.default_median == pytest.approx(2e-5) and first.template == "elementwise"
        assert store.counts() == {"devices": 1, "aggregates": 2, "samples": 5, "submissions": 7}
        assert store.check() == []


def test_lookup_by_backend_signature_and_version(store_url: str) -> None:
    with open_store(store_url) as store:
        store.submit(DEVICE, [record(1), record(2, version="0.2.0")], client="a")
        store.submit(OTHER, [record(1, schedule=3, median=1e-6)], client="b")
        found = store.lookup("wasm", [record(1).signature, record(2).signature], None)
        assert sorted((r.fingerprint, r.signature[-1]) for r in found) == [
            (DEVICE.fingerprint, "1"), (DEVICE.fingerprint, "2"), (OTHER.fingerprint, "1")]  # fmt: skip
        assert [r.version for r in store.lookup("wasm", [record(2).signature], "0.1.0")] == []
        assert store.lookup("webgpu", [record(1).signature], None) == []
        assert store.counts(OTHER.fingerprint) == {"devices": 1, "aggregates": 1, "samples": 1, "submissions": 1}


def test_concurrent_writers_lose_nothing(store_url: str) -> None:
    """Four store objects (separate connections) in threads, one hot key and many distinct ones."""
    stores = [open_store(store_url) for _ in range(4)]
    errors: list[BaseException] = []

    def work(store: Store, worker: int) -> None:
        try:
            for i in range(25):
                store.submit(DEVICE, [record(0, median=(i + 1) * 1e-6), record(1000 + worker * 100 + i)], client="t")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s, w)) for w, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = stores[0].counts()
    assert counts["aggregates"] == 1 + 100 and counts["submissions"] == 200
    assert counts["samples"] == 64 + 100  # the hot key keeps its latest 64
    assert stores[0].check() == []
    for store in stores:
        store.close()


def test_reopen_keeps_data_and_checks_the_schema_version(store_url: str) -> None:
    with open_store(store_url) as store:
        store.submit(DEVICE, [record(7)], client="x")
    with open_store(store_url) as store:
        assert store.counts()["samples"] == 1
        store._write(lambda cursor: cursor.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(store_url)


def test_sqlite_urls_and_damaged_files(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:////tmp/a.sqlite") == Path("/tmp/a.sqlite")
    assert sqlite_path("sqlite:///relative.sqlite") == Path("relative.sqlite")
    assert isinstance(open_store(str(tmp_path / "plain.sqlite")), SqliteStore)
    with pytest.raises(StoreError, match="unknown database URL scheme 'mysql'"):
        open_store("mysql://x/y")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        open_store(f"sqlite:///{junk}")
    good = tmp_path / "good.sqlite"
    with open_store(f"sqlite:///{good}") as store:
        store.submit(DEVICE, [record(1)], client="x")
    with sqlite3.connect(good) as connection:  # an aggregate that disagrees with its samples
        connection.execute("UPDATE aggregates SET median = 1.0")
    with open_store(f"sqlite:///{good}") as store:
        assert any("differs from its samples" in p for p in store.check())


LIMITS = [DEFAULT_LIMITS, LimitsAttr(1024, (1024, 1024, 1024), 32768), LimitsAttr(64, (64, 32, 1), 4096)]


@pytest.mark.parametrize("limits", LIMITS, ids=["default", "lavapipe", "small"])
def test_space_membership_equals_the_enumeration(limits: LimitsAttr) -> None:
    stated = {
        "max-compute-invocations-per-workgroup": limits.invocations.data,
        **{f"max-compute-workgroup-size-{a}": v.data for a, v in zip("xyz", limits.workgroup.data, strict=True)},
        "max-compute-workgroup-storage-size": limits.storage.data, "max-storage-buffer-binding-size": limits.binding.data,
    }  # fmt: skip
    for template, enumerate_space in SPACES.items():
        unbounded = enumerate_space(UNBOUNDED)
        assert {s for s in unbounded if in_space("webgpu", template, s, stated)} == set(enumerate_space(limits))
    for registers in (16, 32):
        assert {
            s for s in wasm_matmul_schedules(32) if in_space("wasm", "matmul", s, {"v128_registers": registers})
        } == set(wasm_matmul_schedules(registers))
        assert all(in_space("wasm", t, s, {"v128_registers": registers}) for t, f in WASM_SPACES.items() for s in f()
                   if t != "matmul")  # fmt: skip


def test_a_lost_postgres_connection_is_reopened(postgres: Postgres) -> None:
    import psycopg

    url = postgres.new_database()
    with open_store(url) as store:
        store.submit(DEVICE, [record(1)], client="x")
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as admin:  # the server drops us
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            for _ in range(200):  # termination is asynchronous
                if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall():
                    break
                time.sleep(0.01)
        with pytest.raises(StoreBusy, match="lost the connection"):
            store.submit(DEVICE, [record(2)], client="x")  # a write may have committed: the caller decides
        store.submit(DEVICE, [record(3)], client="x")
        assert store.counts()["samples"] == 2 and store.check() == []
