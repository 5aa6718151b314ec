"""HEAD answers like GET, without a body, on every GET route (load balancers use it)."""

from __future__ import annotations

import pytest

from tests.support.browser import body_json

GET_ROUTES = ["/", "/home", "/whoami", "/fetchStatus", "/healthz", "/password"]


async def sign_in(browser, unique_email) -> None:
    assert (await browser.register("Head", unique_email("head"))).code == 201


@pytest.mark.parametrize("accept_json", [False, True], ids=["page", "json"])
@pytest.mark.parametrize("path", GET_ROUTES)
@pytest.mark.gen_test
async def test_head_answers_like_get_without_a_body(browser, unique_email, path, accept_json):
    await sign_in(browser, unique_email)
    got = await browser.get(path, accept_json=accept_json)
    head = await browser.fetch("HEAD", path, accept_json=accept_json)
    assert head.code == got.code != 405
    assert head.body == b""
    for name in ("Content-Type", "Cache-Control", "Vary", "X-Served-By", "Location"):
        assert head.headers.get(name) == got.headers.get(name), name
    assert int(head.headers["Content-Length"]) > 0 or got.code in (302, 303)


@pytest.mark.gen_test
async def test_head_of_the_health_check_gives_gets_length(browser):
    got = await browser.get("/healthz")
    head = await browser.fetch("HEAD", "/healthz")
    assert (got.code, head.code, head.body) == (200, 200, b"")
    assert int(head.headers["Content-Length"]) == len(got.body)


@pytest.mark.gen_test
async def test_head_signed_out_and_on_post_only_routes(browser):
    assert (await browser.fetch("HEAD", "/")).code == 200
    assert (await browser.fetch("HEAD", "/home")).code == 302
    assert (await browser.fetch("HEAD", "/whoami")).code == 401
    assert (await browser.fetch("HEAD", "/nope")).code == 404
    assert (await browser.fetch("HEAD", "/logout")).code == 405
    for path in ("/login", "/register", "/addStatus"):  # as GET: to the page meant
        assert (await browser.fetch("HEAD", path)).code == 302, path


@pytest.mark.gen_test
async def test_head_of_home_counts_no_view(browser, unique_email):
    await sign_in(browser, unique_email)
    assert body_json(await browser.get("/home", accept_json=True))["message"]["views"] == 1
    for _ in range(3):
        assert (await browser.fetch("HEAD", "/home")).code == 200
    assert body_json(await browser.get("/home", accept_json=True))["message"]["views"] == 2
