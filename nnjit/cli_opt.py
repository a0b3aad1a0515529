"""`nnjit-opt`: xdsl-opt with nnjit's universe, reading and writing textual IR."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from xdsl.xdsl_opt_main import xDSLOptMain

import nnjit
from nnjit.errors import NnjitError


class NnjitOptMain(xDSLOptMain):
    """The stock xDSL driver; nnjit's dialects and passes arrive through the `xdsl.universe` entry point.

    `nnjit-opt m.mlir -p canonicalize,nn-recognize-patterns --print-between-passes`
    """

    version_format = f"nnjit-opt {nnjit.__version__} (xdsl {{xdsl_version}})"

    def __init__(self, args: Sequence[str] | None = None):
        super().__init__(description="nnjit modular optimizer driver", args=args)


def opt_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the `nnjit-opt` console script; an `NnjitError` (a pass refusing its input) is
    one line on stderr and exit status 1, as `nnjit` reports it, not a traceback."""
    try:
        NnjitOptMain(args).run()
    except NnjitError as error:
        print(f"nnjit-opt: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
