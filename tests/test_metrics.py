"""``GET /metrics`` of one process (the app in-process): names, labels and counts.

Across forked workers and restarts: ``tests/test_metrics_workers.py``.
"""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

PASSWORD = "correct horse battery"


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found, name: str, **labels: str) -> float:
    """Sum over the samples of ``name`` whose labels include ``labels``."""
    return sum(
        v
        for (n, sample_labels), v in found.items()
        if n == name and set(labels.items()) <= set(sample_labels)
    )


@pytest.mark.gen_test
async def test_requests_sessions_and_sign_ins_are_counted(browser, new_browser, unique_email):
    email = unique_email()
    assert (await browser.register("Mo", email, PASSWORD)).code == 201
    assert (await new_browser().register("Mo", email, PASSWORD)).code == 409
    for _ in range(3):
        assert (await browser.get("/whoami", accept_json=True)).code == 200
    assert (await browser.get("/fetchStatus?limit=2", accept_json=True)).code == 200
    assert (await browser.get("/private/path/42")).code == 404
    assert (await browser.post("/logout", accept_json=True)).code == 200
    assert (await browser.login(email, "wrong password!")).code == 401
    assert (await browser.login(email, PASSWORD)).code == 200

    response = await browser.get("/metrics")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Cache-Control"] == "no-store"
    found = samples(response.body)

    requests = "app_http_requests_total"
    assert value(found, requests, handler="/whoami", method="GET", status="200") == 3
    assert value(found, requests, handler="/fetchStatus", method="GET", status="200") == 1
    assert value(found, requests, handler="(not found)", method="GET", status="404") == 1
    assert b"/private/path" not in response.body and b"limit=" not in response.body
    duration = "app_http_request_duration_seconds_count"
    assert value(found, duration, handler="/whoami", method="GET") == 3
    assert value(found, "app_http_request_duration_seconds_bucket", handler="/whoami",
                 method="GET", le="+Inf") == 3  # fmt: skip

    assert value(found, "app_registrations_total", result="success") == 1
    assert value(found, "app_registrations_total", result="email_taken") == 1
    assert value(found, "app_logins_total", result="success") == 1
    assert value(found, "app_logins_total", result="failure") == 1
    assert value(found, "app_sessions_created_total") == 2  # registration, sign-in
    assert value(found, "app_sessions_ended_total", reason="logout") == 1
    assert total(found, "app_session_cache_lookups_total") >= 4
    assert value(found, "app_redis_commands_total", script="create") == 2
    assert value(found, "app_redis_commands_total", script="destroy") >= 1
    assert value(found, "app_redis_command_duration_seconds_count") == total(
        found, "app_redis_commands_total"
    )
    assert value(found, "app_process_resident_memory_bytes") > 10_000_000
    assert value(found, "app_process_open_fds") > 3
    assert value(found, "app_process_cpu_seconds") > 0
    assert ("app_bcrypt_queue_length", ()) in found and ("app_mysql_pool_in_use", ()) in found


@pytest.mark.gen_test
async def test_unknown_methods_do_not_mint_labels(browser):
    for method in ("BREW", "WHEN"):
        response = await browser.fetch(method, "/whoami")
        assert response.code == 405
    found = samples((await browser.get("/metrics")).body)
    assert value(found, "app_http_requests_total", handler="/whoami", method="other",
                 status="405") == 2  # fmt: skip


@pytest.fixture
def app_config(app_config, request):
    return dataclasses.replace(app_config, **getattr(request, "param", {}))


@pytest.mark.parametrize(
    "app_config", [{"metrics": False}, {"metrics_port": 9}], indirect=True, ids=["off", "own-port"]
)
@pytest.mark.gen_test
async def test_no_metrics_route_when_off_or_on_its_own_port(app_config, browser):
    assert (await browser.get("/metrics")).code == 404
    assert (await browser.get("/")).code == 200
