"""Run compiled models in Chromium: the exported page, driven through Playwright.

    outputs = compiled.run(inputs, executor="chromium-webgpu")      # or "chromium-wasm"
    page = shared_browser().open(site_dir)                          # any exported site
    result = page.run("wasm", inputs, repeats=10)                   # outputs, per-run ms, description
    online = page.run_online("webgpu", 30.0, inputs)                # inferences while the page tunes between them
    page = browser.open(site_dir, query="backend=wasm&autorun=1")   # first inference on load: page.ttfi()
    page = browser.open(site_dir, query="max-binding=20000&no-f16=1")  # a weak device: page.device()

The executors export the module as a site (`nnjit.runtime.bundle.export_site`) into a temporary
folder, serve it on 127.0.0.1 (`SiteServer`: COOP/COEP, so the page is cross-origin isolated and Wasm
runs in workers), open it in Debian's Chromium (`/usr/bin/chromium`, or `$NNJIT_CHROMIUM`) and call
`window.nnjitPage` in it: the same page and JS runtime that `nnjit export` ships, so tests of the
executor test what users run. WebGPU in headless Chromium is Dawn's adapter (SwiftShader on a
machine without a GPU). Any console error or uncaught exception in the page raises `NnjitError`.
One browser per process; one page per exported module, reused while its schedules stay the same.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr

from nnjit.errors import NnjitError
from nnjit.runtime.serve import SiteServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-unsafe-webgpu",
)  # fmt: skip
"""Flags that run Debian's Chromium as root in a container, with WebGPU on (see DESIGN.md)."""
TIMEOUT_MS = 600_000


@dataclass
class RunResult:
    """What one `SitePage.run` returns: outputs as numpy, per-run milliseconds, and what ran them."""

    outputs: dict[str, np.ndarray]
    ms: list[float]
    description: str
    message: str
    diffs: dict[str, float]
    load_ms: float
    threads: int | None
    stored: int
    """How many kernel schedules the page found in IndexedDB for this device (tuned in an earlier visit)."""
    waits: list[float] = field(default_factory=list[float])
    """Per run, the milliseconds it waited for an online tuning step to end (0 without online tuning)."""


@dataclass
class OnlineInference:
    """One inference of `SitePage.run_online`."""

    t: float
    """When it was due: seconds since the page's navigation started."""
    latency_ms: float
    """How long it ran (inputs in, outputs back in JS), not counting `wait_ms`."""
    wait_ms: float
    """From when it was due to when it started: the tuning step in progress when it was due."""
    steps_before: int
    """Tuning steps that ran between the previous inference and this one."""
    outputs: dict[str, np.ndarray]


@dataclass
class OnlineRun:
    """What `SitePage.run_online` returns: every inference, the swaps and the tuner's status."""

    inferences: list[OnlineInference]
    swaps: list[dict[str, Any]]
    """Per swap: `t` (ms since navigation), `kernel`, `signature`, `from` / `to` schedules, `fromMs` / `toMs`, `speedup`."""
    status: dict[str, Any]
    """The tuner (online.js `status()`): kernels, tuned, skipped, steps, measured, rejected, maxStepMs, running, complete."""
    started: float
    """When the loop started: seconds since navigation."""
    description: str
    threads: int | None

    @property
    def latencies(self) -> list[tuple[float, float]]:
        """(t since navigation in s, latency in ms) of every inference."""
        return [(i.t, i.latency_ms) for i in self.inferences]


class BrowserPage:
    """A Chromium page that records console errors, uncaught exceptions and dialogs as failures."""

    def __init__(self, browser: Any, url: str, ready: str | None = None, context: Any = None, strict: bool = True):
        self.strict = strict
        self.owns_context = context is None
        self.context = browser.new_context() if context is None else context
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.console: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_exception)
        self.page.on("dialog", self._on_dialog)
        self.page.goto(url)
        if ready is not None:
            self.page.wait_for_function(ready)
            self.check()

    def _on_console(self, message: Any) -> None:
        self.console.append(f"{message.type}: {message.text}")
        if message.type == "error" and self.strict:
            where = message.location.get("url", "") if isinstance(message.location, dict) else ""
            self.errors.append(f"console error: {message.text}" + (f" ({where})" if where else ""))

    def _on_exception(self, error: Any) -> None:
        self.errors.append(f"page exception: {error}")

    def _on_dialog(self, dialog: Any) -> None:
        self.errors.append(f"dialog opened: {dialog.message}")  # a model string that ran as code would do this
        dialog.dismiss()

    def check(self) -> None:
        """Raise `NnjitError` for any console error or exception the page has reported."""
        if self.errors:
            raise NnjitError(f"Chromium reported: {'; '.join(self.errors[:3])}")

    def evaluate(self, script: str, argument: Any = None) -> Any:
        """`page.evaluate`, with page errors and JS exceptions raised as `NnjitError`."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            value = self.page.evaluate(script, argument)
        except PlaywrightError as error:
            raise NnjitError(f"in Chromium: {str(error).splitlines()[0]}") from None
        self.check()
        return value

    def screenshot(self, path: str | Path) -> Path:
        """A full-page PNG."""
        self.page.screenshot(path=str(path), full_page=True)
        return Path(path)

    def close(self) -> None:
        """Close the page (and its context, if the page made it)."""
        (self.context if self.owns_context else self.page).close()


class SitePage(BrowserPage):
    """One exported site open in a Chromium page, served by its own HTTP server on 127.0.0.1."""

    def __init__(self, browser: Any, site: Path, isolate: bool = True, context: Any = None, query: str = ""):
        self.server = SiteServer({"/": site}, isolate=isolate).start()
        try:
            super().__init__(browser, self.server.url + (f"?{query}" if query else ""), None, context)
            self.manifest: dict[str, Any] = self._ready()
        except BaseException:
            self.server.stop()
            raise

    def _ready(self) -> dict[str, Any]:
        self.evaluate("() => window.nnjitPage.ready")
        return self.evaluate("() => window.nnjitPage.manifest()")

    def reload(self) -> None:
        """Reload the page (same origin and URL, so IndexedDB and the Cache API persist, as for a returning
        visitor; an `autorun` query runs the first inference again)."""
        self.page.reload()
        self.manifest = self._ready()

    def run(self, backend: str, inputs: Mapping[str, np.ndarray] | None = None, repeats: int = 1,
            threads: int | None = None) -> RunResult:  # fmt: skip
        """Run on `backend` ("webgpu" | "wasm") `repeats` times; `inputs` None runs the bundle's sample."""
        encoded = None if inputs is None else _encode_inputs(self.manifest["inputs"], inputs)
        options = {"inputs": encoded, "repeats": repeats, "threads": threads}
        answer = self.evaluate("([backend, options]) => window.nnjitPage.run(backend, options)", [backend, options])
        outputs = {spec["name"]: _decode(spec, answer["outputs"][spec["name"]]) for spec in self.manifest["outputs"]}
        return RunResult(outputs, [float(v) for v in answer["ms"]], answer["description"], answer["message"],
                         {k: float(v) for k, v in answer["diffs"].items()}, float(answer["loadMs"]), answer["threads"],
                         int(answer["stored"] or 0), [float(v) for v in answer["waits"]])  # fmt: skip

    def run_online(self, backend: str, seconds: float, inputs: Mapping[str, np.ndarray] | None = None,
                   period_ms: float = 0.0, budget_seconds: float = 120.0, service: str | None = None,
                   until: float | None = None) -> OnlineRun:  # fmt: skip
        """Request inferences for `seconds` (or until `until` seconds since navigation), one due every
        `period_ms` or as soon as the previous one answered when that is later (0: back to back), while
        the page tunes online between them (`online.js`; started if it is not running, with
        `budget_seconds`). `inputs` None runs the bundle's sample."""
        encoded = None if inputs is None else _encode_inputs(self.manifest["inputs"], inputs)
        options = {"seconds": seconds, "untilMs": None if until is None else until * 1000, "inputs": encoded,
                   "periodMs": period_ms, "budgetSeconds": budget_seconds, "service": service}  # fmt: skip
        answer = self.evaluate("([b, o]) => window.nnjitPage.runOnline(b, o)", [backend, options])
        specs = self.manifest["outputs"]
        distinct = [{spec["name"]: _decode(spec, o[spec["name"]]) for spec in specs} for o in answer["outputs"]]
        inferences = [OnlineInference(float(r["requestedAt"]) / 1000, float(r["ms"]), float(r["waitMs"]), int(r["stepsBefore"]),
                                      distinct[r["output"]]) for r in answer["runs"]]  # fmt: skip
        status = answer["status"]
        return OnlineRun(inferences, list(status["swaps"]), status, float(answer["startedAt"]) / 1000,
                         answer["description"], answer["threads"])  # fmt: skip

    def online_status(self, backend: str, wait_seconds: float = 0.0) -> dict[str, Any] | None:
        """The online tuner's status (None if it never started), after waiting up to `wait_seconds` for it to finish."""
        return self.evaluate("([b, o]) => window.nnjitPage.online(b, o)", [backend, {"waitSeconds": wait_seconds}])

    def stop_online(self, backend: str) -> None:
        """Stop online tuning at its next step boundary."""
        self.evaluate("(b) => window.nnjitPage.stopOnline(b)", backend)

    def device(self) -> dict[str, Any] | None:
        """The page's check of its WebGPU adapter against the bundle's needs (nnjit.js `deviceFit`): `ok`,
        `error`, `notice`, and the `limits` / `features` as the page sees them (after `?max-binding=` /
        `?no-f16=1`); None when the bundle has no WebGPU build."""
        return self.evaluate("() => window.nnjitPage.device()")

    def ttfi(self) -> dict[str, Any]:
        """Time to first inference: `first` maps each backend run so far to `atMs` (performance.now() when its
        first output was there: ms since navigation start), `ms` (that run), `cache` (where the bundle's files
        came from: `fromCache`, `hits`, `misses`) and `stored` (schedules from IndexedDB); `timeline` has the
        page's stages (ms since navigation)."""
        return self.evaluate("() => window.nnjitPage.ttfi()")

    def tune(self, backend: str, budget_seconds: float = 10.0, service: str | None = None) -> dict[str, Any]:
        """Tune in the page (`tuner.js`), sharing with a kernel-db `service`; returns its report."""
        options = {"budgetSeconds": budget_seconds, "service": service}
        return self.evaluate("([b, o]) => window.nnjitPage.tune(b, o)", [backend, options])

    def close(self) -> None:
        """Close the page and stop its server."""
        try:
            super().close()
        finally:
            self.server.stop()


class ChromiumBrowser:
    """One headless Chromium started through Playwright; `open` serves and opens sites in it."""

    def __init__(self, executable: str | None = None, args: Sequence[str] = CHROMIUM_ARGS, headless: bool = True):
        path = executable or os.environ.get("NNJIT_CHROMIUM") or CHROMIUM
        if not Path(path).exists():
            raise NnjitError(f"the chromium executors need Chromium at {path} (`apt-get install -y chromium`)")
        try:
            self.browser = _playwright().chromium.launch(executable_path=path, args=list(args), headless=headless)
        except Exception as error:
            raise NnjitError(f"Chromium at {path} does not start: {str(error).splitlines()[0]}") from None
        self.pages: list[BrowserPage] = []

    @property
    def version(self) -> str:
        """Chromium's version."""
        return str(self.browser.version)

    def open(self, site: str | Path, isolate: bool = True, context: Any = None, query: str = "") -> SitePage:
        """Serve `site` and open its page (in `context`, a Playwright browser context, or a fresh one);
        `query`: the page's URL parameters (`backend=webgpu&autorun=1&online=1`, see app.js)."""
        page = SitePage(self.browser, Path(site), isolate, context, query)
        self.pages.append(page)
        return page

    def open_url(self, url: str, ready: str | None = None, context: Any = None, strict: bool = True) -> BrowserPage:
        """Open any page; `ready`: a JS predicate to wait for; `strict`: console errors fail (exceptions always do)."""
        page = BrowserPage(self.browser, url, ready, context, strict)
        self.pages.append(page)
        return page

    def new_context(self) -> Any:
        """A fresh browser context (its own IndexedDB and caches: another "visitor")."""
        return self.browser.new_context()

    def close(self) -> None:
        """Close every page and the browser."""
        for page in self.pages:
            with suppress(Exception):  # a page of a crashed browser cannot close cleanly
                page.close()
        self.pages.clear()
        self.browser.close()


_PLAYWRIGHT: list[Any] = []


def _playwright() -> Any:
    """The process's Playwright driver: its sync API allows one per thread, shared by every browser."""
    if not _PLAYWRIGHT:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise NnjitError("the chromium executors need Playwright (`pip install playwright`)") from None
        _PLAYWRIGHT.append(sync_playwright().start())
        atexit.register(_stop_playwright)
    return _PLAYWRIGHT[0]


def _stop_playwright() -> None:
    _close_shared()
    while _PLAYWRIGHT:
        _PLAYWRIGHT.pop().stop()


_BROWSER: list[ChromiumBrowser] = []


def shared_browser() -> ChromiumBrowser:
    """The process's browser (started on first use, closed at exit)."""
    if not _BROWSER:
        _BROWSER.append(ChromiumBrowser())
    return _BROWSER[0]


def _close_shared() -> None:
    while _BROWSER:
        _BROWSER.pop().close()


def _encode_inputs(specs: Sequence[Mapping[str, Any]], inputs: Mapping[str, np.ndarray]) -> dict[str, str]:
    from nnjit.runtime.bundle import tensor_io
    from nnjit.runtime.wasm import tensor_bytes

    data = tensor_bytes([tensor_io(spec) for spec in specs], inputs)
    return {spec["name"]: base64.b64encode(raw).decode() for spec, raw in zip(specs, data, strict=True)}


def _decode(spec: Mapping[str, Any], text: str) -> np.ndarray:
    from nnjit.backends.wasm import from_storage

    raw = np.frombuffer(base64.b64decode(text), np.uint8)
    return from_storage(raw, spec["dtype"]).reshape(spec["shape"])


# --- executors -----------------------------------------------------------------------------------

_SITES: WeakKeyDictionary[ModuleOp, tuple[Any, SitePage, str]] = WeakKeyDictionary()


def _site_key(module: ModuleOp, weights: Any) -> Any:
    from nnjit.runtime.wasm import fingerprint

    return fingerprint(module, weights, False)


def page_for(module: ModuleOp, weights: Any, target: str) -> SitePage:
    """The page of a module (exported on first use, again when its schedules change)."""
    from nnjit.compiler import CompiledModel
    from nnjit.runtime.bundle import export_site
    from nnjit.runtime.reference import argument_names, main_function, result_names

    attribute = module.attributes.get("web.target")
    built_for = attribute.data if isinstance(attribute, StringAttr) else "webgpu"
    if built_for != target:
        raise NnjitError(f"the chromium-{target} executor runs modules compiled with target='{target}'; "
                         f"this one was compiled for '{built_for}'")  # fmt: skip
    key = _site_key(module, weights)
    known = _SITES.get(module)
    if known is not None and known[0] == key:
        return known[1]
    if known is not None:
        known[1].close()
        shutil.rmtree(known[2], ignore_errors=True)
    main = main_function(module)
    compiled = CompiledModel(target, module, weights, argument_names(main), result_names(main))
    directory = tempfile.mkdtemp(prefix="nnjit-site-")
    atexit.register(shutil.rmtree, directory, True)
    export_site(directory, **{target: compiled}, title="nnjit executor")
    page = shared_browser().open(directory)
    _SITES[module] = (key, page, directory)
    return page


def run_in_chromium(module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Any, target: str) -> RunResult:
    """Run a module compiled for `target` ("webgpu" | "wasm") once in Chromium."""
    return page_for(module, weights, target).run(target, inputs)
