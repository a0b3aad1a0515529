"""`nnjit serve`: a static file server for exported sites, with the headers a cross-origin isolated page needs.

    with SiteServer({"/": Path("dist")}) as server:     # 127.0.0.1, a free port
        print(server.url)                               # http://127.0.0.1:PORT/

WebGPU needs a secure context (127.0.0.1 is one); multi-threaded Wasm needs `SharedArrayBuffer`,
which browsers give only to cross-origin isolated pages: every response carries
`Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` (off with
`isolate=False`, which the weak-device tests use). A Content-Security-Policy allows scripts from the
site itself only (no inline script), so a model's strings can never run as code even if a page bug
inserted them as markup. Several folders can be mounted under URL prefixes (the benchmark serves
onnxruntime-web next to nnjit's site). Files only: no directory listings, no path outside a mount.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

CONTENT_TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
    ".wgsl": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8", ".css": "text/css",
    ".bin": "application/octet-stream", ".onnx": "application/octet-stream", ".png": "image/png",
}  # fmt: skip
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "style-src 'self'; img-src 'self' data:; connect-src 'self' http://127.0.0.1:*; object-src 'none'"
)


class _Handler(SimpleHTTPRequestHandler):
    server: _Server  # pyright: ignore[reportIncompatibleVariableOverride] (always our server class)

    def translate_path(self, path: str) -> str:
        route = unquote(urlsplit(path).path)
        for prefix, root in sorted(self.server.mounts.items(), key=lambda item: -len(item[0])):
            if route == prefix.rstrip("/") or route.startswith(prefix if prefix.endswith("/") else prefix + "/"):
                relative = route[len(prefix) :].lstrip("/") or "index.html"
                target = (root / relative).resolve()
                if target == root or root in target.parents:
                    return str(target / "index.html" if target.is_dir() else target)
        return str(Path("/nonexistent"))

    def list_directory(self, path: str | Any) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "no listings")
        return None

    def guess_type(self, path: str | Any) -> str:
        return CONTENT_TYPES.get(Path(str(path)).suffix, "application/octet-stream")

    def end_headers(self) -> None:
        if self.server.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        if self.server.csp:
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mounts: dict[str, Path]
    isolate: bool
    csp: bool
    verbose: bool


class SiteServer:
    """Serves folders on 127.0.0.1 in a background thread (or in the foreground with `serve_forever`)."""

    def __init__(self, mounts: Mapping[str, str | Path], port: int = 0, host: str = "127.0.0.1",
                 isolate: bool = True, csp: bool = True, verbose: bool = False):  # fmt: skip
        self.server = _Server((host, port), _Handler)
        self.server.mounts = {prefix: Path(root).resolve() for prefix, root in mounts.items()}
        self.server.isolate, self.server.csp, self.server.verbose = isolate, csp, verbose
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, ending in `/`."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> SiteServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self.server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
