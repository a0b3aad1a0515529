"""The kernel database: the best schedule found per device, backend, kernel signature and nnjit version.

    with KernelDatabase() as db:                  # $NNJIT_CACHE_DIR or $XDG_CACHE_HOME/nnjit/kernels.sqlite
        db.add_device(device)
        db.store(record)                          # upsert that keeps the faster record
        db.lookup(device.fingerprint, "webgpu", signature.digest)

SQLite from the standard library, in WAL mode with a busy timeout, every write one `BEGIN IMMEDIATE`
transaction: any number of processes may read and tune at once, and a process killed mid-write
leaves the last committed state. Each kernel row carries a checksum of its payload (`check()` lists
rows whose checksum disagrees). A file SQLite reports as corrupt or not a database is moved aside
(`kernels.sqlite.corrupt-<time>`) with a warning and the database is rebuilt empty.

Schema (version 1):

    meta(key TEXT PRIMARY KEY, value TEXT)                       -- schema_version
    devices(fingerprint TEXT PRIMARY KEY, backend TEXT, description TEXT, limits TEXT, last_seen REAL)
    kernels(device, backend, signature, version,                 -- the key
            template, schedule, median, default_median, lite_size, full_size,
            candidates, complete, tuned_at, checksum)
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import warnings
from collections.abc import Generator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from nnjit.dialects.web import Schedule

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 60_000
FILE_NAME = "kernels.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS devices (fingerprint TEXT PRIMARY KEY, backend TEXT NOT NULL, "
    "description TEXT NOT NULL, limits TEXT NOT NULL, last_seen REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kernels (device TEXT NOT NULL, backend TEXT NOT NULL, signature TEXT NOT NULL, "
    "version TEXT NOT NULL, template TEXT NOT NULL, schedule TEXT NOT NULL, median REAL NOT NULL, "
    "default_median REAL NOT NULL, lite_size INTEGER NOT NULL, full_size INTEGER NOT NULL, "
    "candidates TEXT NOT NULL, complete INTEGER NOT NULL, tuned_at REAL NOT NULL, checksum TEXT NOT NULL, "
    "PRIMARY KEY (device, backend, signature, version))",
)
_COLUMNS = (
    "device", "backend", "signature", "version", "template", "schedule", "median", "default_median",
    "lite_size", "full_size", "candidates", "complete", "tuned_at", "checksum",
)  # fmt: skip
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class DatabaseWarning(UserWarning):
    """A kernel database file was unusable and has been moved aside."""


def default_path() -> Path:
    """`$NNJIT_CACHE_DIR/kernels.sqlite`, else `$XDG_CACHE_HOME/nnjit/kernels.sqlite` (`~/.cache` by default)."""
    override = os.environ.get("NNJIT_CACHE_DIR")
    if override:
        return Path(override) / FILE_NAME
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "nnjit" / FILE_NAME


def nnjit_version() -> str:
    """The version that keys records: a new nnjit may print different code for the same schedule."""
    from nnjit import __version__

    return __version__


def schedule_to_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule as a JSON object."""
    return {
        "workgroup": list(schedule.workgroup), "tile": list(schedule.tile), "thread": list(schedule.thread),
        "vector": schedule.vector, "unroll": schedule.unroll, "shared": schedule.shared,
    }  # fmt: skip


def schedule_from_json(data: Mapping[str, Any]) -> Schedule:
    """The schedule a JSON object of `schedule_to_json` describes."""
    w, t, th = data["workgroup"], data["tile"], data["thread"]
    return Schedule(
        (int(w[0]), int(w[1]), int(w[2])), (int(t[0]), int(t[1]), int(t[2])), (int(th[0]), int(th[1])),
        int(data["vector"]), int(data["unroll"]), bool(data["shared"]),
    )  # fmt: skip


@dataclass
class Record:
    """The tuning result of one kernel signature on one device: the best schedule and every candidate."""

    device: str
    backend: str
    signature: str
    template: str
    schedule: Schedule
    median: float
    default_median: float
    lite_size: int
    full_size: int
    candidates: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    complete: bool = True
    version: str = field(default_factory=nnjit_version)
    tuned_at: float = field(default_factory=time.time)

    def _payload(self) -> tuple[Any, ...]:
        return (
            self.device, self.backend, self.signature, self.version, self.template,
            json.dumps(schedule_to_json(self.schedule), sort_keys=True), _finite(self.median),
            _finite(self.default_median), self.lite_size, self.full_size,
            json.dumps(self.candidates, sort_keys=True), int(self.complete), self.tuned_at,
        )  # fmt: skip

    def row(self) -> tuple[Any, ...]:
        """The row as stored, its checksum last."""
        payload = self._payload()
        return (*payload, _checksum(payload))

    @staticmethod
    def from_row(row: tuple[Any, ...]) -> Record:
        """A record from a stored row (columns in `_COLUMNS` order)."""
        values = dict(zip(_COLUMNS, row, strict=True))
        return Record(
            values["device"], values["backend"], values["signature"], values["template"],
            schedule_from_json(json.loads(values["schedule"])), float(values["median"]),
            float(values["default_median"]), int(values["lite_size"]), int(values["full_size"]),
            json.loads(values["candidates"]), bool(values["complete"]), values["version"], float(values["tuned_at"]),
        )  # fmt: skip


def _finite(value: float) -> float:
    """SQLite stores inf, but JSON and comparisons are simpler with a large finite stand-in."""
    return value if value < 1e300 else 1e300


def _checksum(payload: tuple[Any, ...]) -> str:
    return hashlib.sha256(json.dumps([str(v) for v in payload]).encode()).hexdigest()[:32]


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    name = getattr(error, "sqlite_errorname", "")
    text = str(error).lower()
    return name in _CORRUPT or "malformed" in text or "not a database" in text or "corrupt" in text


class KernelDatabase:
    """One connection to the kernel database file at `path` (created, with its folder, when missing)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = self._open()
        except sqlite3.DatabaseError as error:
            if not _is_corruption(error):
                raise
            self._move_aside(error)
            self.connection = self._open()

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(connection)
            connection.execute("PRAGMA synchronous = NORMAL")
            (verdict,) = connection.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
            with _transaction(connection):
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                connection.execute("SELECT count(*) FROM kernels").fetchone()
        except BaseException:
            connection.close()
            raise
        return connection

    def _move_aside(self, error: sqlite3.DatabaseError) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            with suppress(FileNotFoundError):  # never there, or another process moved it first
                source.replace(Path(f"{aside}{suffix}"))
        warnings.warn(
            f"kernel database {self.path} is unusable ({error}); moved it to {aside} and started an empty one",
            DatabaseWarning,
            stacklevel=3,
        )

    # --- writing ---

    def add_device(
        self, fingerprint: str, backend: str, description: Mapping[str, str], limits: Mapping[str, int]
    ) -> None:
        """Remember a device (or refresh when it was last seen)."""
        with _transaction(self.connection):
            self.connection.execute(
                "INSERT INTO devices (fingerprint, backend, description, limits, last_seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (fingerprint) DO UPDATE SET last_seen = excluded.last_seen",
                (fingerprint, backend, json.dumps(dict(description), sort_keys=True),
                 json.dumps(dict(limits), sort_keys=True), time.time()),
            )  # fmt: skip

    def store(self, record: Record, replace: bool = False) -> bool:
        """Insert `record`, or replace the stored one when `record` is faster (ties: when it is complete).

        With `replace`, replace whatever is stored. Returns whether `record` is now the stored row.
        """
        placeholders = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[4:])
        keep_faster = (
            "" if replace else
            " WHERE excluded.median < kernels.median OR "
            "(excluded.median = kernels.median AND excluded.complete > kernels.complete)"
        )  # fmt: skip
        with _transaction(self.connection):
            cursor = self.connection.execute(
                f"INSERT INTO kernels ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
                f"ON CONFLICT (device, backend, signature, version) DO UPDATE SET {updates}{keep_faster}",
                record.row(),
            )
            return cursor.rowcount > 0

    # --- reading ---

    def lookup(self, device: str, backend: str, signature: str, version: str | None = None) -> Record | None:
        """The stored record of a kernel signature on a device, for this nnjit version unless given."""
        row = self.connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM kernels WHERE device = ? AND backend = ? AND signature = ? AND version = ?",
            (device, backend, signature, version or nnjit_version()),
        ).fetchone()
        return Record.from_row(row) if row is not None else None

    def records(self, device: str | None = None, backend: str | None = None) -> list[Record]:
        """Every record (of one device and/or backend), ordered by key."""
        rows = self.connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM kernels WHERE (? IS NULL OR device = ?) AND (? IS NULL OR backend = ?) "
            "ORDER BY device, backend, signature, version",
            (device, device, backend, backend),
        ).fetchall()
        return [Record.from_row(row) for row in rows]

    def latest_device(self, backend: str) -> str | None:
        """The fingerprint of the device of `backend` seen most recently."""
        row = self.connection.execute(
            "SELECT fingerprint FROM devices WHERE backend = ? ORDER BY last_seen DESC LIMIT 1", (backend,)
        ).fetchone()
        return row[0] if row is not None else None

    def device_limits(self, fingerprint: str) -> dict[str, int]:
        """The limits stored with a device (empty when unknown)."""
        row = self.connection.execute("SELECT limits FROM devices WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return {str(k): int(v) for k, v in json.loads(row[0]).items()} if row is not None else {}

    def check(self) -> list[str]:
        """Problems found: SQLite's integrity check, then rows whose checksum disagrees with their payload."""
        problems = [r[0] for r in self.connection.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"]
        for row in self.connection.execute(f"SELECT {', '.join(_COLUMNS)} FROM kernels").fetchall():
            if _checksum(tuple(row[:-1])) != row[-1]:
                problems.append(f"checksum mismatch in row {row[:4]}")
        return problems

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> KernelDatabase:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another process holds the file.

    Changing the journal mode needs an exclusive lock, and while another connection is creating or
    recovering the file SQLite can answer SQLITE_BUSY at once without calling the busy handler, so
    two tuners opening a new database together would otherwise fail; retry up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            busy = "locked" in str(error) or "busy" in str(error)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Generator[None]:
    """`BEGIN IMMEDIATE` ... `COMMIT` (the write lock up front, so two writers never deadlock on upgrade)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
