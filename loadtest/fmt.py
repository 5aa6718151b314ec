"""Number formatting shared by the progress line and the reports."""

from __future__ import annotations


def format_seconds(value: float | None) -> str:
    """A latency in a readable unit: ``850 µs``, ``12.3 ms``, ``1.20 s``; ``-`` for None."""
    if value is None:
        return "-"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def format_ms(value: float | None) -> str:
    """Milliseconds with one decimal, without the unit (tables); ``-`` for None."""
    return "-" if value is None else f"{value * 1e3:.1f}"
