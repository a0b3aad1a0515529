"""The kernel database survives: kill -9 mid-write, corrupt and truncated files, concurrent writers.

Writers are real processes (`db_writer.py`, and the `nnjit tune` CLI on a tiny model), never mocks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import db_writer
import pytest
from tuner_cases import tiny_model

from nnjit.dialects.web import Schedule
from nnjit.tuner.database import DatabaseWarning, KernelDatabase, Record, default_path

WRITER = Path(__file__).with_name("db_writer.py")
SCHEDULE = Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False)
FASTER = Schedule((128, 1, 1), (0, 0, 0), (1, 1), 1, 2, False)


def record(signature: str, median: float, schedule: Schedule = SCHEDULE, complete: bool = True) -> Record:
    return Record("dev", "webgpu", signature, "elementwise", schedule, median, 2e-5, 16, 16, [{"n": 1}], complete)


def writer(db: Path, tag: str, count: int, out: Path, seed: int = 0, go: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(db), tag, str(count), "25", str(seed), str(out), *([go] if go else [])],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def assert_consistent(path: Path) -> list[Record]:
    with KernelDatabase(path) as db:
        assert db.check() == []
        return db.records()


def test_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NNJIT_CACHE_DIR", str(tmp_path / "a"))
    assert default_path() == tmp_path / "a" / "kernels.sqlite"
    monkeypatch.delenv("NNJIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "nnjit" / "kernels.sqlite"


def test_upsert_keeps_the_faster_record(tmp_path: Path) -> None:
    with KernelDatabase(tmp_path / "k.sqlite") as db:
        assert db.store(record("s", 3e-5))
        assert not db.store(record("s", 4e-5, FASTER))  # slower: ignored
        assert db.store(record("s", 1e-5, FASTER))
        found = db.lookup("dev", "webgpu", "s")
        assert found is not None and found.schedule == FASTER and found.median == 1e-5
        assert db.store(record("s", 9e-5), replace=True)  # a retune replaces whatever is there
        assert db.lookup("dev", "webgpu", "s", version="0.0.0") is None  # keyed by nnjit version
        assert db.lookup("other", "webgpu", "s") is None
        assert db.check() == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed-header"])
def test_unusable_file_is_moved_aside_and_rebuilt(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "kernels.sqlite"
    with KernelDatabase(path) as db:
        for i in range(200):
            db.store(record(f"s{i}", 1e-5))
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a database, honest " * 300)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"\0" * 100 + data[100:])
    with pytest.warns(DatabaseWarning, match="moved it to"), KernelDatabase(path) as db:
        assert db.records() == []
        db.store(record("fresh", 1e-5))
        assert db.lookup("dev", "webgpu", "fresh") is not None
    aside = list(tmp_path.glob("kernels.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes()[:40] == path.with_name(aside[0].name).read_bytes()[:40]
    assert [r.signature for r in assert_consistent(path)] == ["fresh"]


def test_kill_9_mid_write_leaves_a_consistent_database(tmp_path: Path) -> None:
    path = tmp_path / "kernels.sqlite"
    rng = random.Random(1)
    stored = 0
    for attempt in range(4):
        process = writer(path, f"w{attempt}", -1, tmp_path / "unused.json", seed=attempt)
        assert process.stdout is not None
        for _ in range(rng.randint(5, 60)):
            process.stdout.readline()  # wait until it has committed this many iterations
        time.sleep(rng.uniform(0.0, 0.05))  # and die somewhere inside a later transaction
        process.send_signal(signal.SIGKILL)
        process.wait()
        records = assert_consistent(path)
        assert len(records) > stored
        stored = len(records)
    assert all(len(r.candidates) == 40 and r.schedule == db_writer.SCHEDULE for r in records)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path, count = tmp_path / "kernels.sqlite", 300
    go = tmp_path / "go"
    processes = [writer(path, tag, count, tmp_path / f"{tag}.json", seed, str(go)) for seed, tag in enumerate("ab")]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    go.touch()  # both have the database open: start writing together
    for process in processes:
        process.communicate(timeout=120)
        assert process.returncode == 0
    records = {r.signature: r for r in assert_consistent(path)}
    assert {f"{t}-{i}" for t in "ab" for i in range(count)} <= set(records)
    offered = [json.loads((tmp_path / f"{t}.json").read_text()) for t in "ab"]
    for key in offered[0]:
        assert records[key].median == min(o[key] for o in offered)  # the faster record won
    assert len(records) == 2 * count + 25
    a, b = ([r.tuned_at for r in records.values() if r.signature.startswith(f"{t}-")] for t in "ab")
    assert min(b) < max(a) and min(a) < max(b), "the writers did not overlap in time"


def test_real_tuners_killed_and_concurrent(tmp_path: Path) -> None:
    model, path = tmp_path / "tiny.onnx", tmp_path / "kernels.sqlite"
    model.write_bytes(tiny_model().SerializeToString())
    env = {**os.environ, "NNJIT_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "nnjit.cli", "tune", str(model), "--quiet", "--repeats", "3"]

    victim = subprocess.Popen([*command, "--budget", "60"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None:
        if path.exists():
            with KernelDatabase(path) as db:
                if db.records():
                    break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    survivors = assert_consistent(path)
    assert survivors, "the tuner stored nothing before it was killed"

    pair = [subprocess.Popen([*command, "--budget", "4", "--retune"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    for process in pair:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    after = assert_consistent(path)
    assert {r.signature for r in survivors} <= {r.signature for r in after}
    assert len(after) == 4  # one row per kernel signature of the tiny model, none lost, none doubled
