"""nnjit's dialects, passes and targets, registered with xDSL through the `xdsl.universe` entry point.

Factories import lazily so that `xdsl-opt` start-up stays cheap. Every key must equal the registered
class's own `name` (a test checks it).
"""

from __future__ import annotations

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe


def _nn_dialect() -> Dialect:
    from nnjit.dialects.nn import NN

    return NN


def _recognize_patterns() -> type[ModulePass]:
    from nnjit.passes.nn_recognize_patterns import RecognizePatternsPass

    return RecognizePatternsPass


NNJIT_UNIVERSE = Universe(
    all_dialects={"nn": _nn_dialect},
    all_passes={"nn-recognize-patterns": _recognize_patterns},
)
