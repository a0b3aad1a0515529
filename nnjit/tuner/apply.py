"""Where `nnjit.compile` picks up tuned schedules: the `web-apply-schedules` step for this machine.

    spec = apply_schedules_spec("webgpu")   # 'web-apply-schedules{db="..." device="webgpu-..."}' or None

None when the target cannot be tuned, there is no database file, or the device cannot be opened
(compiling for inspection on a machine without an adapter still works, with default schedules).
"""

from __future__ import annotations

import os
from pathlib import Path

from nnjit.errors import NnjitError
from nnjit.tuner.backend import BACKENDS, get_backend
from nnjit.tuner.database import default_path


def apply_schedules_spec(target: str, db: str | os.PathLike[str] | None = None) -> str | None:
    """The `-p` spec that applies the database's schedules for `target` on this machine's device."""
    path = Path(db) if db is not None else default_path()
    if target not in BACKENDS or not path.is_file():
        return None
    try:
        fingerprint = get_backend(target).device().fingerprint
    except NnjitError:
        return None
    escaped = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'web-apply-schedules{{db="{escaped}" device="{fingerprint}"}}'
