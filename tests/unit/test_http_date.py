"""The ``Date`` header of the current second, formatted once per second (``serving``)."""

from __future__ import annotations

import datetime
import time

import tornado.web
from tornado import httputil

import serving


def test_the_kept_date_is_tornados_for_every_kind_of_time(monkeypatch) -> None:
    original = httputil.format_timestamp
    monkeypatch.setattr(httputil, "format_timestamp", original)
    serving.cache_http_date()
    serving.cache_http_date()  # installed once, not wrapped twice
    cached = httputil.format_timestamp
    assert cached is not original and cached.original is original
    now = time.time()
    for ts in (now, now + 0.999, int(now) + 1, 0, 1359312200.5):
        assert cached(ts) == original(int(ts)) == original(ts)
    when = datetime.datetime(2030, 1, 2, 3, 4, 5)
    assert cached(when) == original(when) == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert cached(time.gmtime(0)) == original(time.gmtime(0))


def test_a_response_date_is_the_current_second(monkeypatch) -> None:
    monkeypatch.setattr(httputil, "format_timestamp", httputil.format_timestamp)
    serving.cache_http_date()
    app = tornado.web.Application()
    request = httputil.HTTPServerRequest(
        start_line=httputil.RequestStartLine("GET", "/", "HTTP/1.1"),
        headers=httputil.HTTPHeaders({"Host": "localhost"}),
        connection=_NoConnection(),
    )
    before = time.time()
    date = tornado.web.RequestHandler(app, request)._headers["Date"]
    after = time.time()
    assert date in {httputil.format_timestamp(int(before)), httputil.format_timestamp(int(after))}
    assert date.endswith(" GMT")


class _NoConnection:
    def set_close_callback(self, callback: object) -> None:
        pass
