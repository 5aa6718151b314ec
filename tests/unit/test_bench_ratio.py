"""The benchmark's ratio to the hello world: each run against the reference runs on
either side of it (``bench.context.Summary.ratio_to``)."""

from __future__ import annotations

from bench.context import Measurement, Summary
from bench.wrk import WrkResult


def run(rps: float) -> Measurement:
    result = WrkResult(
        requests=int(rps * 10), duration_s=10, socket_errors=0, timeouts=0,
        status_errors=0, non2xx=None, codes={}, served={},
        p50_ms=1, p90_ms=1, p99_ms=1, max_ms=1, wrk_cpu_s=0,
    )  # fmt: skip
    return Measurement("x", result, server_cpu_s=0, redis_cpu_s=0)


def test_a_drift_of_the_machine_cancels_out() -> None:
    # The machine slows down by 10% a round; the app is at 0.8 of the hello world
    # measured at the same moment (its run lies halfway between two hello runs).
    hello = Summary("hello", [run(1000), run(900), run(800)], closing=[run(700)])
    app = Summary("app", [run(0.8 * 950), run(0.8 * 850), run(0.8 * 750)])
    assert abs(app.ratio_to(hello) - 0.8) < 1e-9
    # Without a closing run, the last round is compared with its own hello run only.
    hello.closing.clear()
    assert app.ratio_to(hello) == 0.8 * 850 / 850  # median of 0.8, 0.8, 0.75
