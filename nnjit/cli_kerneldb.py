"""`nnjit kernel-db`: run the crowdsourced kernel database service, or check a store.

    nnjit kernel-db serve [--db URL] [--host 127.0.0.1] [--port 8765] [--rate 20] [--burst 60]
    nnjit kernel-db check [--db URL]          # integrity and aggregate consistency; exit 2 on problems

`--db` is `sqlite:///PATH` (default: `kernel-service.sqlite` next to the local kernel database),
a plain file path, or `postgresql://user@host/dbname`. docs/kernel-db.md describes the API.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from nnjit.errors import NnjitError

DEFAULT_PORT = 8765


def _announce(line: str) -> None:
    print(line, flush=True)


def command_serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT / SIGTERM."""
    try:
        from nnjit.kerneldb.server import ServiceConfig, serve
    except ImportError as error:
        raise NnjitError(f"the kernel-db service needs aiohttp: pip install 'nnjit[service]' ({error})") from None
    config = ServiceConfig(
        max_body=args.max_body, rate=args.rate, burst=args.burst, cors_origins=tuple(args.cors_origin or ())
    )
    if args.access_log:
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        asyncio.run(serve(args.db, args.host, args.port, config, _announce, args.access_log))
    except OSError as error:
        raise NnjitError(f"cannot serve on {args.host}:{args.port}: {error}") from None


def command_check(args: argparse.Namespace) -> None:
    """Print the store's counts and problems; `NnjitError` (exit 2) when there are problems."""
    from nnjit.kerneldb.store import open_store

    with open_store(args.db) as store:
        problems = store.check()
        counts = store.counts()
        print(f"{store.kind} store {store.url}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        raise NnjitError(f"{len(problems)} problem(s) in the kernel-db store")
    print("ok")


def add_kernel_db_parser(commands: Any) -> None:
    """Register `nnjit kernel-db {serve,check}` on the `nnjit` subcommand parsers."""
    parser = commands.add_parser("kernel-db", help="the crowdsourced kernel database service")
    actions = parser.add_subparsers(dest="action", required=True)
    server = actions.add_parser("serve", help="serve the kernel-db HTTP API")
    server.add_argument("--db", help="sqlite:///PATH (default next to the local kernel database) or postgresql://...")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    server.add_argument("--rate", type=float, default=20.0, help="requests per second per client address (0: no limit)")
    server.add_argument("--burst", type=float, default=60.0, help="requests a client address may make at once")
    server.add_argument("--max-body", type=int, default=1 << 20, help="bytes of a request body, at most")
    server.add_argument("--cors-origin", action="append", metavar="ORIGIN", help="another origin allowed by CORS")
    server.add_argument("--access-log", action="store_true", help="log every request to stderr")
    server.set_defaults(handler=command_serve)
    checker = actions.add_parser("check", help="check a kernel-db store's integrity")
    checker.add_argument("--db", help="the store's database URL (default as for serve)")
    checker.set_defaults(handler=command_check)
