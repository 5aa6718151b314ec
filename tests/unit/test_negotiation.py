"""HTML or JSON from the ``Accept`` header alone (``handlers.negotiation.prefers_json``)."""

from __future__ import annotations

import pytest

from handlers.negotiation import prefers_json


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/json, text/html;q=0.9",
        "text/html;q=0.5, application/json",
        "application/*",
        "APPLICATION/JSON",
        "application/json;q=0.8, */*;q=0.1",
        "text/*;q=0.2, application/json;q=0.3",
        "text/html;q=0, application/json;q=0.001",
    ],
)
def test_json_when_strictly_preferred(accept: str) -> None:
    assert prefers_json(accept)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "text/html",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/json, text/html",  # a tie goes to HTML
        "application/json;q=0.5, text/html;q=0.5",
        "application/json;q=0",
        "application/json;q=nonsense",
        "application/json;q=7, text/html;q=1",  # q is clamped to 1: a tie
        "image/png",
        ",,;;,",
        "text/*, application/json;q=0.9",
    ],
)
def test_html_otherwise(accept: str | None) -> None:
    assert not prefers_json(accept)


def test_the_most_specific_range_gives_the_quality() -> None:
    # application/json is named itself at 0.1, so application/* at 1 does not apply to it
    assert not prefers_json("application/*, application/json;q=0.1, text/html;q=0.5")
    assert prefers_json("*/*;q=0.1, application/json;q=0.2")


def test_long_accept_values_are_decided_but_not_kept() -> None:
    from handlers import negotiation

    long_json = "application/json, " + "x/y;q=0.1, " * 30
    long_html = "text/html, application/json;q=0.5, " + "x/y;q=0.1, " * 30
    assert len(long_json) > negotiation.KEPT_ACCEPT_LENGTH
    kept = negotiation._decide_kept.cache_info().currsize
    assert prefers_json(long_json) and not prefers_json(long_html)
    assert prefers_json("application/json") and prefers_json("application/json")
    assert negotiation._decide_kept.cache_info().currsize <= kept + 1
