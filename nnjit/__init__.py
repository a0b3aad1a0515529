"""nnjit: a just-in-time compiler for in-browser deep-learning inference, on xDSL."""

__version__ = "0.1.0"
