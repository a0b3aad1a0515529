"""Real kernel-db services and a real PostgreSQL for the tests.

`start_service(db_url, folder, *flags)` runs `nnjit kernel-db serve --port 0` in a subprocess, reads
the address it announces and waits for `/v1/health`. `postgres` (session) runs Debian's PostgreSQL
from a fresh `initdb` in a temporary folder, as the `postgres` user when the tests run as root, on a
Unix socket only; a test that needs it FAILS (never skips) when it cannot start, saying why.
`postgres_url()` makes a new empty database on it.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_counter = itertools.count()


def nnjit_command() -> list[str]:
    """The `nnjit` console script next to this Python, else `python -m nnjit.cli`."""
    script = Path(sys.executable).with_name("nnjit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "nnjit.cli"]


@dataclass
class Service:
    """A running `nnjit kernel-db serve` process."""

    process: subprocess.Popen[bytes]
    url: str
    db: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
    """One request with the standard library: status, headers, decoded JSON (or raw bytes)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, got, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, dict(error.headers), error.read()
    try:
        return status, got, json.loads(raw) if raw else None
    except ValueError:
        return status, got, raw


def start_service(db: str, folder: Path, *flags: str, timeout: float = 30.0) -> Service:
    """Start a service on a free port and wait until `/v1/health` answers 200."""
    log = folder / f"service-{next(_counter)}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([*nnjit_command(), "kernel-db", "serve", "--db", db, "--port", "0", *flags],
                                   stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + timeout
    url = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kernel-db service exited with {process.returncode}:\n{log.read_text()}")
        words = [w for w in log.read_text().split() if w.startswith("http://")]
        if words:
            url = words[0]
            try:
                if http("GET", f"{url}/v1/health")[0] == 200:
                    return Service(process, url, db, log)
            except OSError:
                pass
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"kernel-db service did not become healthy in {timeout} s:\n{log.read_text()}")


@pytest.fixture
def service_factory(tmp_path: Path) -> Generator[Callable[..., Service]]:
    started: list[Service] = []

    def start(db: str | None = None, *flags: str) -> Service:
        service = start_service(db or f"sqlite:///{tmp_path}/service-{len(started)}.sqlite", tmp_path, *flags)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def run_async(coroutine: Any) -> Any:
    """`asyncio.run` in a thread of its own: this process may hold a running loop in the main thread
    (Playwright's sync API keeps one there once any browser test has run)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def post_many(url: str, bodies: list[Any], concurrency: int = 1000) -> list[int | str]:
    """POST every body at once (at most `concurrency` connections); each one's status, or its error's name."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def one(body: Any) -> int | str:
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    return response.status
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                return type(error).__name__

        return list(await asyncio.gather(*(one(b) for b in bodies)))


# --- PostgreSQL -----------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A PostgreSQL server of the tests: Unix socket in `socket_dir`, superuser `nnjit`, trust auth."""

    socket_dir: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://nnjit@/{database}?host={self.socket_dir}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"kerneldb_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install -y postgresql")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Generator[Postgres]:
    try:
        import psycopg
    except ImportError as error:
        pytest.fail(f"psycopg is not installed (pip install 'psycopg[binary]'): {error}")
    binaries = _postgres_bin()
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="nnjit-pg-", dir="/tmp")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = f"{root}/data", _free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        if done.returncode:
            pytest.fail(
                f"PostgreSQL: {' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )

    options = (
        f"-k {root} -p {port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200"
    )
    try:
        run(str(binaries / "initdb"), "-D", data, "-A", "trust", "-U", "nnjit", "-E", "UTF8", "--no-sync")
        run(str(binaries / "pg_ctl"), "start", "-D", data, "-l", f"{root}/log", "-w", "-t", "60", "-o", options)
        server = Postgres(root, port)
        with psycopg.connect(server.url("postgres"), connect_timeout=10) as connection:
            connection.execute("SELECT 1")
        yield server
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
