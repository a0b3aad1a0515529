"""`nnjit-opt`: xdsl-opt with nnjit's universe, reading and writing textual IR."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.xdsl_opt_main import xDSLOptMain

import nnjit


class NnjitOptMain(xDSLOptMain):
    """The stock xDSL driver; nnjit's dialects and passes arrive through the `xdsl.universe` entry point.

    `nnjit-opt m.mlir -p canonicalize,nn-recognize-patterns --print-between-passes`
    """

    version_format = f"nnjit-opt {nnjit.__version__} (xdsl {{xdsl_version}})"

    def __init__(self, args: Sequence[str] | None = None):
        super().__init__(description="nnjit modular optimizer driver", args=args)


def opt_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the `nnjit-opt` console script."""
    NnjitOptMain(args).run()
