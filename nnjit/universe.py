"""nnjit's dialects, passes and targets, registered with xDSL through the `xdsl.universe` entry point.

Factories import lazily so that `xdsl-opt` start-up stays cheap. Every key must equal the registered
class's own `name` (a test checks it).
"""

from __future__ import annotations

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe
from xdsl.utils.target import Target


def _nn_dialect() -> Dialect:
    from nnjit.dialects.nn import NN

    return NN


def _web_dialect() -> Dialect:
    from nnjit.dialects.web import WEB

    return WEB


def _recognize_patterns() -> type[ModulePass]:
    from nnjit.passes.nn_recognize_patterns import RecognizePatternsPass

    return RecognizePatternsPass


def _decompose_gemm() -> type[ModulePass]:
    from nnjit.passes.nn_decompose_gemm import DecomposeGemmPass

    return DecomposeGemmPass


def _convert_nn_to_web() -> type[ModulePass]:
    from nnjit.passes.convert_nn_to_web import ConvertNnToWebPass

    return ConvertNnToWebPass


def _plan_buffers() -> type[ModulePass]:
    from nnjit.passes.web_plan_buffers import PlanBuffersPass

    return PlanBuffersPass


def _split_bindings() -> type[ModulePass]:
    from nnjit.passes.web_split_bindings import SplitBindingsPass

    return SplitBindingsPass


def _apply_schedules() -> type[ModulePass]:
    from nnjit.passes.web_apply_schedules import ApplySchedulesPass

    return ApplySchedulesPass


def _wgsl_target() -> type[Target]:
    from nnjit.backends.wgsl import WgslTarget

    return WgslTarget


def _wat_target() -> type[Target]:
    from nnjit.backends.wasm import WatTarget

    return WatTarget


NNJIT_UNIVERSE = Universe(
    all_dialects={"nn": _nn_dialect, "web": _web_dialect},
    all_passes={
        "nn-recognize-patterns": _recognize_patterns,
        "nn-decompose-gemm": _decompose_gemm,
        "convert-nn-to-web": _convert_nn_to_web,
        "web-plan-buffers": _plan_buffers,
        "web-apply-schedules": _apply_schedules,
        "web-split-bindings": _split_bindings,
    },
    all_targets={"nnjit-wgsl": _wgsl_target, "nnjit-wat": _wat_target},
)
