"""Redis round trips per request, counted by Redis itself (MONITOR on every primary),
cache off and on, on each topology (one server, Redis Cluster, Redis Sentinel)."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from tests.support.monitor import RedisMonitor
from tests.support.topologies import TOPOLOGIES, primary_urls, topology_url


@pytest.fixture(params=TOPOLOGIES)
def redis_url(request, redis_url):
    return topology_url(request, request.param, redis_url)


pytestmark = pytest.mark.usefixtures("redis_url")  # the app is looked up by name


@pytest.fixture(params=[0, 10_000], ids=["no-cache", "cache"])
def app_config(request, app_config):
    return dataclasses.replace(app_config, session_cache_size=request.param)


@pytest.mark.gen_test
async def test_round_trips_per_request(browser, unique_email, redis_url, redis_prefix, app_config):
    await browser.register("Trips", unique_email("trips"))
    await browser.get("/home", accept_json=True)  # scripts are loaded by now
    await browser.get("/whoami")  # and, with the cache, the session is cached
    marker = redis_prefix + "sess:"
    with contextlib.ExitStack() as stack:
        monitors = [stack.enter_context(RedisMonitor(url)) for url in primary_urls(redis_url)]
        for _ in range(20):
            assert (await browser.get("/whoami")).code == 200
        whoami = [line for m in monitors for line in m.commands(marker)]
        for monitor in monitors:
            monitor.clear()
        for _ in range(20):
            assert (await browser.get("/home", accept_json=True)).code == 200
        home = [line for m in monitors for line in m.commands(marker)]
    assert all('"EVALSHA"' in line for line in whoami + home)
    if app_config.session_cache_size:
        # A cached read sends nothing. A change is one script, whose reply keeps the
        # entry current: the next request's read is a hit again.
        assert len(whoami) == 0, whoami
        assert len(home) == 20, home
    else:
        # One round trip to read, one more to change.
        assert len(whoami) == 20, whoami
        assert len(home) == 40, home
