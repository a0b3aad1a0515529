"""Project hygiene that a reviewer would otherwise check by hand."""

from __future__ import annotations

from pathlib import Path

from xdsl.universe import Universe

from nnjit.universe import NNJIT_UNIVERSE

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600
# Files allowed past the limit, each with its reason.
LONG_FILES = {
    "nnjit/dialects/nn.py": "one dialect a file: the whole nn op set with its verifiers",
}


def test_no_source_file_grows_past_the_limit():
    too_long = []
    for path in sorted([*ROOT.glob("nnjit/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("tools/**/*.py")]):
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and relative not in LONG_FILES:
            too_long.append(f"{relative}: {lines} lines")
    assert too_long == []


def test_registered_names_equal_class_names():
    for key, factory in NNJIT_UNIVERSE.all_dialects.items():
        assert factory().name == key
    for key, factory in NNJIT_UNIVERSE.all_passes.items():
        assert factory().name == key
    for key, factory in NNJIT_UNIVERSE.all_targets.items():
        assert factory().name == key  # pyright: ignore[reportAttributeAccessIssue]


def test_nnjit_is_visible_to_stock_xdsl_without_clashes():
    multiverse = Universe.get_multiverse()  # raises on duplicate names, e.g. a target called "wgsl"
    assert "nn" in multiverse.all_dialects
    assert set(NNJIT_UNIVERSE.all_passes) <= set(multiverse.all_passes)
