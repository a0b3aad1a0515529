"""Peak memory of the Chromium this process drives, read from /proc (no psutil needed).

    with ChromiumMemory() as watch:
        ...                      # load a model, run it
    print(watch.peak_mib)        # highest total PSS of all Chromium processes, minus the level at entry

PSS (proportional set size, `/proc/PID/smaps_rollup`) divides shared pages among the processes
sharing them, so the sum over the renderer, GPU and utility processes counts each page once. It
covers everything a page costs: the JS heap, Wasm memory, and WebGPU buffers (SwiftShader keeps
them in the GPU process's memory). Sampled every `interval` seconds in a thread.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def chromium_pids(root: int | None = None) -> list[int]:
    """PIDs of every Chromium process below `root` (this process by default)."""
    pending, found = [root or os.getpid()], []
    while pending:
        pid = pending.pop()
        for child in _children(pid):
            pending.append(child)
            try:
                if "chrom" in Path(f"/proc/{child}/comm").read_text():
                    found.append(child)
            except OSError:
                continue
    return found


def chromium_pss_bytes() -> int:
    """Total PSS of Chromium's processes now."""
    total = 0
    for pid in chromium_pids():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class ChromiumMemory:
    """Peak Chromium memory above the level at entry, while the `with` block runs."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, chromium_pss_bytes())

    def __enter__(self) -> ChromiumMemory:
        self.baseline = self.peak = chromium_pss_bytes()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, chromium_pss_bytes())

    @property
    def peak_mib(self) -> float:
        """Peak minus baseline, in MiB."""
        return (self.peak - self.baseline) / 2**20
