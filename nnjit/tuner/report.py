"""The tuning report as one self-contained HTML page: inline CSS and SVG, no script, no network.

    render_html(report)    # str; `TuningReport.write_html(path)` writes it

A summary table (per kernel signature: occurrences, lite / full space, default and best latency,
speedup, chosen schedule), compile cost of the candidates, then per kernel an SVG bar chart with
every measured candidate's median latency in measurement order: the chosen one highlighted, the
default outlined, failed or wrong candidates marked at full width.
"""

from __future__ import annotations

import html
import math
import statistics
from typing import TYPE_CHECKING

from nnjit.tuner.measure import CandidateResult, describe

if TYPE_CHECKING:
    from nnjit.tuner.tune import KernelTuning, TuningReport

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; } th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; } h2 { margin-top: 2em; } .muted { color: #777; }
svg text { font: 11px monospace; } .bar { fill: #9ecae1; } .chosen { fill: #e6550d; }
.default { stroke: #08519c; stroke-width: 2; } .failed { fill: #ccc; } .wrong { fill: #e31a1c; }
"""
ROW_HEIGHT = 16
LABEL_WIDTH = 330
BAR_WIDTH = 520


def _us(seconds: float) -> str:
    return "-" if math.isinf(seconds) else f"{seconds * 1e6:.1f}"


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.1f}" if values else "-"


def _summary(report: TuningReport) -> str:
    rows = []
    for k in report.kernels:
        chosen = describe(k.chosen) if k.chosen is not None else "-"
        speed_bar = min(120, int(24 * k.speedup))
        rows.append(
            f"<tr><td><a href='#{html.escape(k.signature)}'>{html.escape(k.names[0])}</a></td><td>{k.template}</td>"
            f"<td>{html.escape(k.problem.describe())}</td><td class=n>{len(k.names)}</td>"
            f"<td class=n>{k.lite_size} / {k.full_size}</td><td class=n>{k.measured}</td>"
            f"<td class=n>{_us(k.default_median)}</td><td class=n>{_us(k.best_median)}</td>"
            f"<td class=n>{k.speedup:.2f}x <svg width='{speed_bar}' height='8'><rect class='chosen' width='{speed_bar}' "
            f"height='8'/></svg></td><td><code>{html.escape(chosen)}</code> <span class=muted>{k.source} {html.escape(k.shared_summary)}</span></td></tr>"
        )
    head = ("<tr><th>kernel</th><th>template</th><th>problem</th><th>count</th><th>lite / full</th><th>measured</th>"
            "<th>default µs</th><th>best µs</th><th>speedup</th><th>chosen schedule</th></tr>")  # fmt: skip
    return f"<table>{head}{''.join(rows)}</table>"


def _compile_cost(report: TuningReport) -> str:
    built = [r for k in report.kernels if k.source in ("tuned", "shared") for r in k.results if r.compile_seconds]
    if not built:
        return "<p class=muted>No candidate was built in this run (all kernels came from the database).</p>"
    printing = [r.print_seconds for r in built]
    compiling = [r.compile_seconds for r in built]
    first = [r.first_run_seconds for r in built if r.first_run_seconds]
    return (
        "<table><tr><th>per candidate (median)</th><th>ms</th></tr>"
        f"<tr><td>printing (op → code text)</td><td class=n>{_ms(printing)}</td></tr>"
        f"<tr><td>printing + pipeline / module creation</td><td class=n>{_ms(compiling)}</td></tr>"
        f"<tr><td>first run (driver's lazy compile, upload, oracle check input)</td><td class=n>{_ms(first)}</td></tr>"
        f"<tr><td>candidates built</td><td class=n>{len(built)}</td></tr></table>"
    )


def _bar(result: CandidateResult, index: int, scale: float, kernel: KernelTuning) -> str:
    y = index * ROW_HEIGHT
    label = f"{describe(result.schedule)}"
    if result.ok:
        width = max(1.0, BAR_WIDTH * result.median / scale)
        css = "chosen" if result.schedule == kernel.chosen else "bar"
        value = f"{_us(result.median)} µs · build {result.compile_seconds * 1e3:.0f} ms"
    else:
        width, css, value = BAR_WIDTH, ("wrong" if result.status == "wrong" else "failed"), result.status
    outline = " default" if result.schedule == kernel.default else ""
    title = html.escape(f"{label}: {value} {result.message}".strip())
    return (
        f"<g><title>{title}</title><text x='0' y='{y + 12}'>{html.escape(label[:46])}</text>"
        f"<rect class='{css}{outline}' x='{LABEL_WIDTH}' y='{y + 2}' width='{width:.1f}' height='{ROW_HEIGHT - 4}'/>"
        f"<text x='{LABEL_WIDTH + min(width, BAR_WIDTH - 160) + 4:.1f}' y='{y + 12}'>{html.escape(value)}</text></g>"
    )


def _kernel(kernel: KernelTuning) -> str:
    times = [r.median for r in kernel.results if r.ok]
    scale = max(times) if times else 1.0
    bars = "".join(_bar(r, i, scale, kernel) for i, r in enumerate(kernel.results))
    height = max(1, len(kernel.results)) * ROW_HEIGHT + 4
    names = ", ".join(kernel.names[:8]) + (" ..." if len(kernel.names) > 8 else "")
    return (
        f"<h3 id='{html.escape(kernel.signature)}'>{html.escape(kernel.names[0])} <span class=muted>"
        f"{kernel.template} {html.escape(kernel.problem.describe())} · {html.escape(kernel.signature)}</span></h3>"
        f"<p>Occurs as {html.escape(names)}. Lite space {kernel.lite_size} of {kernel.full_size} valid schedules; "
        f"{kernel.measured} measured ({kernel.source}). Default {_us(kernel.default_median)} µs, chosen "
        f"{_us(kernel.best_median)} µs ({kernel.speedup:.2f}x).</p>"
        f"<svg width='{LABEL_WIDTH + BAR_WIDTH + 170}' height='{height}'>{bars}</svg>"
    )


def render_html(report: TuningReport) -> str:
    """The report page."""
    device = report.device
    described = ", ".join(f"{k}: {v}" for k, v in device.description.items() if v)
    default, tuned = report.model_seconds(False), report.model_seconds(True)
    title = f"nnjit tuning report{' — ' + report.model if report.model else ''}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Device <b>{html.escape(device.name)}</b> ({html.escape(device.backend)}; {html.escape(described)};
fingerprint <code>{html.escape(device.fingerprint)}</code>). Budget {report.budget:g} s, {report.wall_seconds:.1f} s
spent{" (budget exhausted)" if report.out_of_budget else ""}; {report.candidates_measured} candidates measured, each checked
against the oracle. Sum of kernel medians over the model: {_us(default)} µs with default schedules,
{_us(tuned)} µs tuned.</p>
<h2>Kernels</h2>{_summary(report)}
<h2>Compile cost</h2>{_compile_cost(report)}
<h2>Every candidate</h2>
<p class=muted>Bars: median latency (linear, per kernel); orange = chosen, dark outline = default schedule,
grey = failed to build or run, red = rejected by the oracle check.</p>
{"".join(_kernel(k) for k in report.kernels)}
</body></html>
"""
