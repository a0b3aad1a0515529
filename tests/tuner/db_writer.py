"""A kernel-database writer process for the durability tests: `db_writer.py DB TAG COUNT SHARED SEED OUT [GO]`.

Iteration `i` stores one record of its own (`<TAG>-<i>`) and one of `SHARED` keys every writer shares
(`shared-<i % SHARED>`), each with a random median and a 40-candidate payload, and prints `stored i`.
COUNT < 0 writes forever (the kill -9 test). OUT (a JSON file) receives, at the end, the median this
writer offered for each shared key (its minimum), so a test can check that the fastest record won.
With GO, it prints `ready` once the database is open and starts writing when the file GO exists.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from nnjit.dialects.web import Schedule
from nnjit.tuner.database import KernelDatabase, Record

SCHEDULE = Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 2, False)


def main(path: str, tag: str, count: int, shared: int, seed: int, out: str, go: str = "") -> None:
    rng = random.Random(seed)
    offered: dict[str, float] = {}
    payload = [{"schedule": {"workgroup": [64, 1, 1]}, "median": rng.random(), "note": "x" * 200}] * 40
    with KernelDatabase(path) as db:
        db.add_device("webgpu-stress", "webgpu", {"device": "stress"}, {})
        if go:
            print("ready", flush=True)
            while not Path(go).exists():
                time.sleep(0.001)
        i = 0
        while count < 0 or i < count:
            key = f"shared-{i % shared}"
            median = rng.uniform(1e-6, 1e-3)
            offered[key] = min(offered.get(key, 1.0), median)
            for signature, value in ((f"{tag}-{i}", rng.uniform(1e-6, 1e-3)), (key, median)):
                db.store(Record("webgpu-stress", "webgpu", signature, "elementwise", SCHEDULE, value, 1e-3, 16, 16,
                                payload))  # fmt: skip
            print(f"stored {i}", flush=True)
            i += 1
    with open(out, "w") as handle:
        json.dump(offered, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), *sys.argv[6:])
