"""``handlers.inputs.cookie_value``: the one cookie asked for, exactly as Tornado parses it."""

from __future__ import annotations

import pytest
from tornado.httputil import parse_cookie

from handlers.inputs import cookie_value

SIGNED = "2|1:1|10:1733220000|3:sid|64:MTIzOmFiY2Rl|0123456789abcdef"  # names itself

HEADERS = [
    f"_xsrf=2|abcd|0123|1733220000; sid={SIGNED}",
    f"sid={SIGNED}; _xsrf=x",
    "sid=a",
    " sid = b ;x=1",
    "xsid=1; sid=2",
    "sid=1; sid=2",
    "sid=1;  sid=3",
    "sid=1; x=sid=2",
    "a=sid; b=c",
    "sid",
    'sid="q\\"x"',
    "",
    "foo=bar;sid=;",
    "=sid=3",
    "asid=4",
    "sid=5;",
    "x=1; sid",
    "a=1;\tsid=2",
    "sid=1; sid",
    'b=1; sid=2; c="sid"',
    "__Host-sid=h; sid=s",
]


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("name", ["sid", "_xsrf", "__Host-sid", "x"])
def test_the_scan_agrees_with_tornados_parser(header: str, name: str) -> None:
    assert cookie_value(header, name) == parse_cookie(header).get(name)
