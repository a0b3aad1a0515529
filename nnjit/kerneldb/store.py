"""Where the kernel-db service keeps what devices submitted: one `Store` interface, SQLite or PostgreSQL.

    store = open_store("sqlite:////var/lib/nnjit/service.sqlite")      # or "postgresql://user@host/db"
    store.submit(device, submissions, client="203.0.113.7")
    store.lookup("wasm", ["matmul:3f0c..."], version=None)              # aggregates of every device
    store.check()                                                       # [] when consistent

Schema (version 1; the same SQL on both databases):

    meta(key TEXT PRIMARY KEY, value TEXT)                             -- schema_version
    devices(fingerprint TEXT PRIMARY KEY, backend, limits, first_seen, last_seen)
    samples(id TEXT PRIMARY KEY, fingerprint, backend, signature, version, schedule,
            median, default_median, client, submitted_at)             -- one per submitted record
    aggregates(fingerprint, backend, signature, version, schedule,    -- the primary key
               template, submissions, median, default_median, updated_at)

`schedule` is the canonical JSON text (`schema.schedule_text`). Per key, the latest `max_samples`
samples are kept (older ones are deleted) and `aggregates.median` is the median of their medians;
`submissions` counts every submission ever. One upload is one transaction: the device row first,
then each record's aggregate row in key order (an upsert, which locks the row in PostgreSQL, so
concurrent uploads of one key serialise and never lose a sample), its sample, the bounded trim, the
new median. SQLite runs in WAL mode with a busy timeout, writers of one process take a lock first;
a process killed mid-write leaves the last committed state. PostgreSQL transactions that deadlock or
fail to serialise are retried.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from nnjit.errors import NnjitError
from nnjit.kerneldb.schema import DeviceInfo, Submission, schedule_text
from nnjit.tuner.database import default_path

SCHEMA_VERSION = "1"
MAX_SAMPLES = 64
"""Medians kept per (device, backend, signature, version, schedule): the latest ones."""
BUSY_TIMEOUT_S = 30.0
RETRIES = 5
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS devices (fingerprint TEXT PRIMARY KEY, backend TEXT NOT NULL, limits TEXT NOT NULL, "
    "first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS samples (id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, backend TEXT NOT NULL, "
    "signature TEXT NOT NULL, version TEXT NOT NULL, schedule TEXT NOT NULL, median DOUBLE PRECISION NOT NULL, "
    "default_median DOUBLE PRECISION NOT NULL, client TEXT NOT NULL, submitted_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS samples_key ON samples (fingerprint, backend, signature, version, schedule)",
    "CREATE TABLE IF NOT EXISTS aggregates (fingerprint TEXT NOT NULL, backend TEXT NOT NULL, signature TEXT NOT NULL, "
    "version TEXT NOT NULL, schedule TEXT NOT NULL, template TEXT NOT NULL, submissions BIGINT NOT NULL, "
    "median DOUBLE PRECISION NOT NULL, default_median DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (fingerprint, backend, signature, version, schedule))",
    "CREATE INDEX IF NOT EXISTS aggregates_lookup ON aggregates (backend, signature, version)",
)
_KEY = "fingerprint = ? AND backend = ? AND signature = ? AND version = ? AND schedule = ?"
_AGGREGATE_COLUMNS = "fingerprint, signature, version, schedule, template, median, default_median, submissions"

T = TypeVar("T")


class StoreError(NnjitError):
    """The store cannot be opened or is not a kernel-db store."""


class StoreBusy(StoreError):
    """A write did not get its lock in time (the service answers 503)."""


@dataclass(frozen=True)
class Aggregate:
    """The aggregated submissions of one schedule of one kernel signature on one device."""

    fingerprint: str
    signature: str
    version: str
    schedule: str
    template: str
    median: float
    default_median: float
    submissions: int


class Cursor:
    """What a transaction's body runs statements on (`?` placeholders on every database)."""

    def __init__(self, run: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]):
        self._run = run

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (empty for statements that return none)."""
        return self._run(sql, parameters)


class Store(ABC):
    """Submissions and their aggregates; the SQL is shared, the connection handling is the subclass's."""

    kind = ""
    url = ""

    def __init__(self, max_samples: int = MAX_SAMPLES):
        self.max_samples = max_samples
        self._local = threading.local()
        self._connections: list[Any] = []
        self._guard = threading.Lock()
        self._create_schema()

    # --- subclass hooks ---

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection (one per thread)."""

    @abstractmethod
    @contextmanager
    def _transaction(self, connection: Any, write: bool) -> Generator[Cursor]:
        """One transaction on `connection`, committed when the body returns, rolled back when it raises."""
        yield Cursor(lambda sql, parameters: [])

    def _retryable(self, error: Exception) -> bool:
        """Whether a failed transaction may simply run again."""
        return False

    def _broken(self, connection: Any) -> bool:
        """Whether `connection` is lost (the server went away): it is then dropped and opened again."""
        return False

    def _create_schema(self) -> None:
        self._write(self._schema_body)

    def _schema_body(self, cursor: Cursor) -> None:
        for statement in _SCHEMA:
            cursor.execute(statement)
        cursor.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING", (SCHEMA_VERSION,)
        )
        (row,) = cursor.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        if row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.url} has kernel-db schema version {row[0]}; this nnjit reads {SCHEMA_VERSION}")

    # --- plumbing ---

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._guard:
                self._connections.append(connection)
        return connection

    def _write(self, body: Callable[[Cursor], T]) -> T:
        return self._run(body, write=True)

    def _read(self, body: Callable[[Cursor], T]) -> T:
        return self._run(body, write=False)

    def _run(self, body: Callable[[Cursor], T], write: bool) -> T:
        """Run `body` in a transaction; retry what may be retried. A lost connection is dropped: a read
        runs again on a new one, a write raises `StoreBusy` (it may or may not have committed)."""
        for attempt in range(RETRIES):
            connection = self._connection()
            try:
                with self._transaction(connection, write) as cursor:
                    return body(cursor)
            except Exception as error:
                broken = self._broken(connection)
                if broken:
                    self._forget(connection)
                    if write or attempt + 1 == RETRIES:
                        raise StoreBusy(f"lost the connection to the store: {' '.join(str(error).split())}") from None
                elif attempt + 1 == RETRIES or not self._retryable(error):
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def _forget(self, connection: Any) -> None:
        self._local.connection = None
        with self._guard:
            if connection in self._connections:
                self._connections.remove(connection)
        with suppress(Exception):
            connection.close()

    # --- the interface ---

    def ping(self) -> None:
        """Raise unless the store answers."""
        self._read(lambda cursor: cursor.execute("SELECT 1"))

    def submit(self, device: DeviceInfo, records: Sequence[Submission], client: str) -> int:
        """Store every record of one upload in one transaction; returns how many."""
        now = time.time()
        ordered = sorted(records, key=lambda r: (r.signature, r.version, schedule_text(r.schedule)))

        def body(cursor: Cursor) -> int:
            cursor.execute(
                "INSERT INTO devices (fingerprint, backend, limits, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (fingerprint) DO UPDATE SET last_seen = excluded.last_seen, limits = excluded.limits",
                (device.fingerprint, device.backend, json.dumps(dict(device.limits), sort_keys=True), now, now),
            )
            for record in ordered:
                self._submit_one(cursor, device, record, client, now)
            return len(ordered)

        return self._write(body)

    def _submit_one(self, cursor: Cursor, device: DeviceInfo, record: Submission, client: str, now: float) -> None:
        key = (device.fingerprint, device.backend, record.signature, record.version, schedule_text(record.schedule))
        cursor.execute(
            "INSERT INTO aggregates (fingerprint, backend, signature, version, schedule, template, submissions, median, "
            "default_median, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
            "ON CONFLICT (fingerprint, backend, signature, version, schedule) DO UPDATE SET updated_at = excluded.updated_at",
            (*key, record.template, record.median, record.default_median, now),
        )
        cursor.execute(
            "INSERT INTO samples (id, fingerprint, backend, signature, version, schedule, median, default_median, client, "
            "submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, *key, record.median, record.default_median, client[:64], now),
        )
        rows = cursor.execute(
            f"SELECT id, median, default_median FROM samples WHERE {_KEY} ORDER BY submitted_at DESC, id DESC", key
        )
        for stale in rows[self.max_samples :]:
            cursor.execute("DELETE FROM samples WHERE id = ?", (stale[0],))
        kept = rows[: self.max_samples]
        cursor.execute(
            f"UPDATE aggregates SET submissions = submissions + 1, median = ?, default_median = ? WHERE {_KEY}",
            (statistics.median(r[1] for r in kept), statistics.median(r[2] for r in kept), *key),
        )

    def lookup(self, backend: str, signatures: Sequence[str], version: str | None) -> list[Aggregate]:
        """Every device's aggregates of `signatures` on `backend` (of one nnjit `version` when given)."""
        if not signatures:
            return []
        marks = ", ".join("?" for _ in signatures)
        sql = f"SELECT {_AGGREGATE_COLUMNS} FROM aggregates WHERE backend = ? AND signature IN ({marks})"
        parameters: list[Any] = [backend, *signatures]
        if version is not None:
            sql, parameters = f"{sql} AND version = ?", [*parameters, version]
        rows = self._read(lambda cursor: cursor.execute(sql, parameters))
        return [Aggregate(r[0], r[1], r[2], r[3], r[4], float(r[5]), float(r[6]), int(r[7])) for r in rows]

    def counts(self, fingerprint: str | None = None) -> dict[str, int]:
        """Rows per table and the submissions ever counted (of one device when given)."""
        where, parameters = ("", ()) if fingerprint is None else (" WHERE fingerprint = ?", (fingerprint,))

        def body(cursor: Cursor) -> dict[str, int]:
            found = {t: int(cursor.execute(f"SELECT count(*) FROM {t}{where}", parameters)[0][0])
                     for t in ("devices", "aggregates", "samples")}  # fmt: skip
            found["submissions"] = int(
                cursor.execute(f"SELECT coalesce(sum(submissions), 0) FROM aggregates{where}", parameters)[0][0]
            )
            return found

        return self._read(body)

    def check(self) -> list[str]:
        """Problems found: the database's own check, then every aggregate against its samples."""
        problems = self._integrity()

        def body(cursor: Cursor) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            aggregates = cursor.execute(
                "SELECT fingerprint, backend, signature, version, schedule, median, default_median, submissions FROM aggregates"
            )
            samples = cursor.execute(
                "SELECT fingerprint, backend, signature, version, schedule, median, default_median FROM samples"
            )
            return aggregates, samples

        aggregates, samples = self._read(body)
        grouped: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
        for row in samples:
            grouped.setdefault(tuple(row[:5]), []).append((float(row[5]), float(row[6])))
        for row in aggregates:
            key, median, default_median, submissions = tuple(row[:5]), float(row[5]), float(row[6]), int(row[7])
            kept = grouped.pop(key, [])
            if not kept or len(kept) > self.max_samples or submissions < len(kept):
                problems.append(f"aggregate {key[:4]} has {len(kept)} samples and {submissions} submissions")
                continue
            expected = statistics.median(m for m, _ in kept), statistics.median(d for _, d in kept)
            if not all(
                math.isclose(a, b, rel_tol=1e-9) for a, b in zip((median, default_median), expected, strict=True)
            ):
                problems.append(f"aggregate {key[:4]} median {median} differs from its samples' {expected[0]}")
        problems.extend(f"samples of {key[:4]} have no aggregate" for key in grouped)
        return problems

    def _integrity(self) -> list[str]:
        return []

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._guard:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteStore(Store):
    """A SQLite file (WAL, busy timeout; writers of this process serialised by a lock)."""

    kind = "sqlite"

    def __init__(self, path: str | Path, max_samples: int = MAX_SAMPLES):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        super().__init__(max_samples)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            (verdict,) = connection.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(f"{self.path} is not a usable SQLite database: {error}") from None
        if verdict != "ok":
            connection.close()
            raise StoreError(f"{self.path} fails SQLite's quick check: {verdict}")
        return connection

    @contextmanager
    def _transaction(self, connection: sqlite3.Connection, write: bool) -> Generator[Cursor]:
        def run(sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
            return connection.execute(sql, tuple(parameters)).fetchall()

        if not write:
            connection.execute("BEGIN")
            try:
                yield Cursor(run)
            finally:
                connection.execute("ROLLBACK")
            return
        with self._write_lock:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreBusy(f"the store is busy: {error}") from None
            try:
                yield Cursor(run)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _integrity(self) -> list[str]:
        rows = self._connection().execute("PRAGMA integrity_check").fetchall()
        return [f"sqlite: {r[0]}" for r in rows if r[0] != "ok"]


class PostgresStore(Store):
    """A PostgreSQL database (psycopg 3), one connection per worker thread."""

    kind = "postgresql"

    def __init__(self, url: str, max_samples: int = MAX_SAMPLES):
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL stores need psycopg: pip install 'nnjit[service]'") from None
        self._psycopg = psycopg
        self.url = url
        super().__init__(max_samples)

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.OperationalError as error:
            raise StoreError(f"cannot connect to {_redact(self.url)}: {' '.join(str(error).split())}") from None

    def _schema_body(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(7206182)")  # one creator at a time (IF NOT EXISTS races)
        super()._schema_body(cursor)

    @contextmanager
    def _transaction(self, connection: Any, write: bool) -> Generator[Cursor]:
        def run(sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
            cursor = connection.execute(sql.replace("?", "%s"), tuple(parameters))
            return cursor.fetchall() if cursor.description is not None else []

        with connection.transaction():
            yield Cursor(run)

    def _broken(self, connection: Any) -> bool:
        return bool(connection.broken or connection.closed)

    def _retryable(self, error: Exception) -> bool:
        errors = self._psycopg.errors
        return isinstance(error, errors.DeadlockDetected | errors.SerializationFailure)

    def _integrity(self) -> list[str]:
        problems: list[str] = []
        for table in ("meta", "devices", "samples", "aggregates"):
            rows = self._read(lambda c, t=table: c.execute(f"SELECT count(*) FROM {t}"))
            if not rows:
                problems.append(f"postgresql: cannot read {table}")
        return problems


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def default_url() -> str:
    """`sqlite:///` + `kernel-service.sqlite` next to the local kernel database (`database.default_path()`)."""
    return f"sqlite:///{default_path().with_name('kernel-service.sqlite')}"


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///path` URL (`sqlite:///relative`, `sqlite:////absolute`, as SQLAlchemy)."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or len(rest) < 2:
        raise StoreError(f"expected sqlite:///PATH, got {url!r}")
    return Path(rest[1:])


def open_store(url: str | None = None, max_samples: int = MAX_SAMPLES) -> Store:
    """The store a database URL names: `sqlite:///PATH`, a plain file path, or `postgresql://...`."""
    url = url or default_url()
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url, max_samples)
    if scheme == "sqlite":
        return SqliteStore(sqlite_path(url), max_samples)
    if scheme:
        raise StoreError(f"unknown database URL scheme {scheme!r}; use sqlite:///PATH or postgresql://...")
    return SqliteStore(Path(url), max_samples)
