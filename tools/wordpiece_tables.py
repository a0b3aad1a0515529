"""Regenerate the character tables of nnjit/runtime/web/wordpiece.js from the `tokenizers` package.

HuggingFace `tokenizers` classifies characters with the `unicode_categories` crate (older Unicode
tables than any current JavaScript engine) and Rust's `char::is_whitespace`; the browser tokenizer
embeds the resulting sets as code point ranges, so its answers do not depend on the engine's
Unicode version. The tables are measured, not derived from a Unicode database: every code point is
put through the package's BertNormalizer and BertPreTokenizer.

    python tools/wordpiece_tables.py           # rewrite the block between the GENERATED markers
    python tools/wordpiece_tables.py --check   # exit 1 if the file is out of date

NO_DECOMPOSE (code points the engine's NFD decomposes and `tokenizers` does not) needs Node.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

FILE = pathlib.Path(__file__).resolve().parents[1] / "nnjit" / "runtime" / "web" / "wordpiece.js"
BEGIN = "// BEGIN GENERATED TABLES (python tools/wordpiece_tables.py)"
END = "// END GENERATED TABLES"
NODE = "node"

Ranges = list[tuple[int, int]]


def code_points() -> list[int]:
    """Every Unicode scalar value (surrogates excluded)."""
    return [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def ranges(points: list[int]) -> Ranges:
    """Sorted code points as inclusive ranges."""
    result: list[list[int]] = []
    for cp in points:
        if result and cp == result[-1][1] + 1:
            result[-1][1] = cp
        else:
            result.append([cp, cp])
    return [(a, b) for a, b in result]


def measure() -> dict[str, Ranges]:
    """The character sets `tokenizers` uses, by table name."""
    from tokenizers.normalizers import NFD, BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    def normalizer(**flags: bool) -> BertNormalizer:
        options = {"clean_text": False, "handle_chinese_chars": False, "strip_accents": False, "lowercase": False}
        return BertNormalizer(**{**options, **flags})

    clean = normalizer(clean_text=True).normalize_str
    strip = normalizer(strip_accents=True).normalize_str
    cjk = normalizer(handle_chinese_chars=True).normalize_str
    nfd = NFD().normalize_str
    pre = BertPreTokenizer().pre_tokenize_str
    sets: dict[str, list[int]] = {name: [] for name in ("OTHER", "CLEAN_SPACE", "SPACE", "PUNCTUATION", "MARK", "CJK")}
    for cp in code_points():
        ch = chr(cp)
        cleaned = clean(ch)
        if cleaned == "":
            sets["OTHER"].append(cp)
        elif cleaned == " " and ch != " ":
            sets["CLEAN_SPACE"].append(cp)
        if nfd(ch) == ch and strip(ch) == "":
            sets["MARK"].append(cp)
        if cjk(ch) != ch:
            sets["CJK"].append(cp)
        pieces = len(pre(f"a{ch}b"))
        if pieces == 2:
            sets["SPACE"].append(cp)
        elif pieces == 3:
            sets["PUNCTUATION"].append(cp)
    tables = {name: ranges(points) for name, points in sets.items()}
    tables["NO_DECOMPOSE"] = ranges(engine_only_decompositions(nfd))
    return tables


def engine_only_decompositions(nfd: object) -> list[int]:
    """Code points that Node's `String.prototype.normalize("NFD")` changes and `tokenizers` leaves alone."""
    script = (
        "const out = [];"
        "for (let cp = 0; cp < 0x110000; cp++) {"
        "  if (cp >= 0xd800 && cp <= 0xdfff) continue;"
        "  const ch = String.fromCodePoint(cp);"
        "  if (ch.normalize('NFD') !== ch) out.push(cp);"
        "}"
        "process.stdout.write(JSON.stringify(out));"
    )
    engine = json.loads(subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True).stdout)
    return [cp for cp in engine if nfd(chr(cp)) == chr(cp)]  # type: ignore[operator]


def render(tables: dict[str, Ranges]) -> str:
    """The generated block of wordpiece.js: one flat [first, last, ...] array per table."""
    lines = [BEGIN]
    for name in ("OTHER", "CLEAN_SPACE", "SPACE", "PUNCTUATION", "MARK", "CJK", "NO_DECOMPOSE"):
        numbers = [f"0x{n:x}" for pair in tables[name] for n in pair]
        lines.append(f"export const {name} = [")
        row = "  "
        for number in numbers:
            if len(row) + len(number) + 2 > 100:
                lines.append(row.rstrip())
                row = "  "
            row += number + ", "
        if row.strip():
            lines.append(row.rstrip())
        lines.append("];")
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the generated block of wordpiece.js."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if wordpiece.js is out of date")
    args = parser.parse_args(argv)
    text = FILE.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    updated = text[:start] + render(measure()) + text[end:]
    if args.check:
        if updated != text:
            print(f"{FILE} is out of date: run python tools/wordpiece_tables.py", file=sys.stderr)
            return 1
        return 0
    FILE.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
