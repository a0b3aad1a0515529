"""nnjit: a just-in-time compiler for in-browser deep-learning inference, on xDSL.

`nnjit.compile(model, shapes=..., target=...)` imports an ONNX model, runs the target's pass
pipeline and returns a `CompiledModel` that can run, show its IR at every stage, and be saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["CompiledModel", "NnjitError", "OnnxImportError", "__version__", "compile", "export", "tune"]

if TYPE_CHECKING:
    from nnjit.compiler import CompiledModel, compile, export
    from nnjit.errors import NnjitError, OnnxImportError
    from nnjit.tuner.tune import tune


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import nnjit` (e.g. by xdsl-opt's plugin discovery) stays cheap.
    if name in ("compile", "CompiledModel", "export"):
        from nnjit import compiler

        return getattr(compiler, name)
    if name == "tune":
        from nnjit.tuner.tune import tune

        return tune
    if name in ("NnjitError", "OnnxImportError"):
        from nnjit import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'nnjit' has no attribute '{name}'")
