"""What happens when a request finishes: its metrics and its access line.

:func:`finished_hook` builds the application's ``log_function`` (Tornado calls it once
per finished request, errors included), so every request is counted and logged in one
place, under its route pattern, whatever handler answered it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import tornado.web

from observability.logs import log_request, log_throttled
from observability.metrics import Metrics

UNMATCHED = "(unmatched)"
#: Routes whose 429 is a throttling decision worth its own log line.
THROTTLED_ROUTES = frozenset(("/login", "/register", "/password"))


def route_patterns(rules: Iterable[tuple[Any, ...]]) -> dict[type, str]:
    """Handler class -> the route pattern it serves (its first one), for labels and logs."""
    patterns: dict[type, str] = {}
    for rule in rules:
        patterns.setdefault(rule[1], rule[0])
    return patterns


def finished_hook(
    patterns: dict[type, str], metrics: Metrics | None, *, access_log: bool
) -> Callable[[tornado.web.RequestHandler], None]:
    """The ``log_function`` setting: count the request, log its line."""

    def finished(handler: tornado.web.RequestHandler) -> None:
        request = handler.request
        seconds = request.request_time()
        route = patterns.get(type(handler), UNMATCHED)
        status = handler.get_status()
        if metrics is not None:
            metrics.request(route, request.method or "", status, seconds)
        if access_log:
            log_request(handler, route, seconds)
        if status == 429 and route in THROTTLED_ROUTES:
            log_throttled(handler, route)

    return finished
