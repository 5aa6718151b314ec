"""CPU per request of the app's metrics, in multiprocess mode: ``python -m bench.metrics_cost``.

Compares what the request path pays now (counts summed in plain dicts, flushed once a
second) with updating the ``prometheus_client`` metrics on every request (a lock and a
write to a shared file per value). ``timeit``, best of several repeats, one process, a
temporary ``PROMETHEUS_MULTIPROC_DIR``; a busy machine inflates both figures alike.
The whole-request cost is ``python -m bench --only session --metrics on`` against
``--metrics off``.
"""

from __future__ import annotations

import os
import tempfile
import time
import timeit

CALLS = 20_000
REPEATS = 7


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="metrics-cost-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus_client loads
        from observability.metrics import Metrics

        metrics = Metrics()
        requests = metrics.http_requests.labels("/whoami", "GET", "200")
        duration = metrics.http_duration.labels("/whoami", "GET")
        hits = metrics.cache_lookups.labels("hit")

        def direct() -> None:
            requests.inc()
            duration.observe(0.0003)
            hits.inc()

        def summed() -> None:
            metrics.request("/whoami", "GET", 200, 0.0003)
            metrics.cache_lookup(True)

        for name, call in (("updated per request", direct), ("summed, then flushed", summed)):
            best = min(timeit.repeat(call, number=CALLS, repeat=REPEATS)) / CALLS
            print(f"{name:24} {best * 1e6:6.2f} µs per /whoami (counter, histogram, cache hit)")
        metrics.flush()
        for _ in range(1000):
            summed()
        started = time.perf_counter()
        metrics.flush()
        per_request = (time.perf_counter() - started) / 1000
        print(f"{'flush, per request':24} {per_request * 1e6:6.2f} µs (1,000 requests a second)")


if __name__ == "__main__":
    main()
