"""Small inline-SVG charts for the HTML report: a line chart and a heat map.

Pure functions from numbers to SVG markup, with no scripts and no external resources,
so the report is one self-contained file that any browser shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family:system-ui,sans-serif;font-size:12px"


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are (x, y) pairs; a y of None leaves a gap."""

    name: str
    color: str
    points: Sequence[tuple[float, float | None]]
    fill: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering ``low``..``high``."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.3g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_label: str = "seconds since start",
    width: int = 880,
    height: int = 260,
    y_format: Callable[[float], str] = _fmt,
) -> str:
    """A line chart with axes, grid, legend and a title, as one ``<svg>`` element."""
    left, right, top, bottom = 64, 16, 34, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None]
    x_ticks = nice_ticks(0.0, max(xs, default=1.0) or 1.0, 8)
    y_ticks = nice_ticks(0.0, max(ys, default=1.0) or 1.0, 5)
    x_max, y_max = x_ticks[-1], y_ticks[-1]

    def px(x: float) -> float:
        return left + plot_w * x / x_max

    def py(y: float) -> float:
        return top + plot_h * (1 - y / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" style="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="18" font-weight="bold" font-size="14">{escape(title)}</text>',
    ]
    for y in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            f'stroke="#e3e3e3"/>'
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end" fill="#555">'
            f"{escape(y_format(y))}</text>"
        )
    for x in x_ticks:
        out.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top + plot_h}" '
            f'y2="{top + plot_h + 4}" stroke="#888"/>'
            f'<text x="{px(x):.1f}" y="{top + plot_h + 17}" text-anchor="middle" '
            f'fill="#555">{_fmt(x)}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="#999"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" fill="#333">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle" fill="#333">{escape(y_label)}</text>'
    )
    for s in series:
        for run in _runs(s.points):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            if s.fill and len(run) > 1:
                base = f"{px(run[-1][0]):.1f},{py(0):.1f} {px(run[0][0]):.1f},{py(0):.1f}"
                out.append(
                    f'<polygon points="{coords} {base}" fill="{s.color}" fill-opacity="0.15"/>'
                )
            if len(run) == 1:
                x, y = run[0]
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{s.color}"/>')
            else:
                out.append(
                    f'<polyline points="{coords}" fill="none" stroke="{s.color}" '
                    f'stroke-width="1.8" stroke-linejoin="round"/>'
                )
    legend_x = left + plot_w
    for s in reversed(series):
        label = escape(s.name)
        legend_x -= 22 + 7 * len(s.name)
        out.append(
            f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{s.color}"/>'
            f'<text x="{legend_x + 16}" y="18" fill="#333">{label}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split a series at its gaps (None values) into runs of defined points."""
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, y in points:
        if y is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x, y))
    if current:
        runs.append(current)
    return runs


def heat_color(value: float, peak: float) -> str:
    """White for zero, through light to dark blue at ``peak``."""
    if value <= 0 or peak <= 0:
        return "#ffffff"
    share = 0.15 + 0.85 * min(1.0, value / peak)
    r, g, b = (round(255 + (end - 255) * share) for end in (8, 81, 156))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    values: Sequence[Sequence[int]],
    *,
    title: str,
    column_titles: Sequence[str] | None = None,
) -> str:
    """A grid of counts (rows x columns), darker for larger; numbers in roomy cells."""
    roomy = len(row_labels) <= 120
    cell_w = 64 if roomy else 40
    cell_h = 18 if roomy else 6
    left, top = 90, 48
    width = max(left + cell_w * len(column_labels) + 20, 8 * len(title) + 20)
    height = top + cell_h * len(row_labels) + 12
    peak = max((v for row in values for v in row), default=0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" style="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="bold" font-size="14">{escape(title)}</text>',
    ]
    for j, label in enumerate(column_labels):
        hint = column_titles[j] if column_titles else label
        out.append(
            f'<text x="{left + cell_w * j + cell_w / 2}" y="{top - 8}" text-anchor="middle" '
            f'font-weight="bold"><title>{escape(hint)}</title>{escape(label)}</text>'
        )
    for i, label in enumerate(row_labels):
        y = top + cell_h * i
        if roomy or i % 10 == 0:
            out.append(
                f'<text x="{left - 8}" y="{y + cell_h - 5 if roomy else y + 6}" '
                f'text-anchor="end" fill="#333">{escape(label)}</text>'
            )
        for j, value in enumerate(values[i]):
            x = left + cell_w * j
            fill = heat_color(value, peak)
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" '
                f'fill="{fill}" stroke="#ddd" stroke-width="0.5">'
                f"<title>{escape(label)}, {escape(column_labels[j])}: {value} requests</title>"
                f"</rect>"
            )
            if roomy:
                ink = "#fff" if peak and value / peak > 0.55 else "#222"
                out.append(
                    f'<text x="{x + cell_w / 2}" y="{y + cell_h - 5}" text-anchor="middle" '
                    f'fill="{ink}">{value}</text>'
                )
    out.append("</svg>")
    return "\n".join(out)
