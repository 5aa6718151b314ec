"""Counts summed on the hot path reach the Prometheus metrics exactly when flushed."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_histogram_buckets_count_and_sum_match_observe():
    metrics = Metrics()
    for seconds in (0.003, 0.005, 0.005001, 0.2, 30.0):
        metrics.request("/x", "GET", 200, seconds)
    metrics.request("/x", "BREW", 405, 0.001)
    found = samples(metrics)

    def bucket(le: str) -> float:
        labels = (("handler", "/x"), ("le", le), ("method", "GET"))
        return found[("app_http_request_duration_seconds_bucket", labels)]

    assert bucket("0.0025") == 0 and bucket("0.005") == 2  # le: bound included
    assert bucket("0.01") == 3 and bucket("0.25") == 4 and bucket("10.0") == 4
    assert bucket("+Inf") == 5
    key = (("handler", "/x"), ("method", "GET"))
    assert found[("app_http_request_duration_seconds_count", key)] == 5
    assert abs(found[("app_http_request_duration_seconds_sum", key)] - 30.213001) < 1e-9
    other = (("handler", "/x"), ("method", "other"), ("status", "405"))
    assert found[("app_http_requests_total", other)] == 1


def test_counts_are_added_once_per_flush():
    metrics = Metrics()
    for _ in range(3):
        metrics.request("/login", "POST", 401, 0.01)
        metrics.cache_lookup(True)
        metrics.redis_command("load", 0.001, None)
    metrics.redis_command("save", 0.002, TimeoutError())
    metrics.flush()
    metrics.flush()  # nothing new: nothing added
    metrics.request("/login", "POST", 200, 0.01)
    found = samples(metrics)
    assert found[("app_logins_total", (("result", "failure"),))] == 3
    assert found[("app_logins_total", (("result", "success"),))] == 1
    assert found[("app_session_cache_lookups_total", (("result", "hit"),))] == 3
    assert found[("app_redis_commands_total", (("script", "load"),))] == 3
    assert found[("app_redis_command_duration_seconds_count", ())] == 4
    assert found[("app_redis_errors_total", (("kind", "timeout"),))] == 1
