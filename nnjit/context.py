"""The xDSL context every nnjit tool parses and rewrites in."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialect_interfaces.op_asm import OpAsmDialectInterface
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.ir import Dialect
from xdsl.parser import Parser

from nnjit.dialects.nn import NN
from nnjit.dialects.web import WEB


def _private_builtin() -> Dialect:
    # xDSL keeps parsed `dense_resource` handles in the builtin dialect's interface; the stock
    # `Builtin` object is a process-wide singleton, so a second parse of the same module would
    # rename handle `w0` to `w0_0`. Each context gets its own builtin dialect instead.
    return Dialect("builtin", list(Builtin.operations), list(Builtin.attributes), [OpAsmDialectInterface()])


def make_context() -> Context:
    """A fresh context with builtin, func, arith and every nnjit dialect loaded."""
    ctx = Context()
    for dialect in (_private_builtin(), Func, Arith, NN, WEB):
        ctx.load_dialect(dialect)
    return ctx


def parse_module(text: str, ctx: Context | None = None) -> ModuleOp:
    """Parse textual IR into a verified module."""
    module = Parser(ctx or make_context(), text).parse_module()
    module.verify()
    return module
