import re

import pytest

from tests.support.browser import body_json


@pytest.mark.gen_test
async def test_register_then_home(browser, unique_email):
    resp = await browser.register("Ann", unique_email())
    assert resp.code == 201, resp.body
    resp = await browser.get("/home", accept_json=True)
    assert body_json(resp)["message"]["views"] == 1


@pytest.mark.gen_test
async def test_static_files_carry_served_by(browser, resources):
    page = await browser.get("/")
    href = re.search(r'rel="stylesheet" href="([^"]+)"', page.body.decode()).group(1)
    assert href.startswith("/static/style.css?v=")
    resp = await browser.get(href)
    assert resp.code == 200 and resp.headers["X-Served-By"] == resources.served_by
    assert b"--accent" in resp.body


@pytest.mark.gen_test
async def test_pages_carry_protective_headers_and_json_stays_lean(browser):
    page = await browser.get("/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    error_page = await browser.get("/missing")
    assert error_page.code == 404 and "Content-Security-Policy" in error_page.headers
    api = await browser.get("/whoami", accept_json=True)
    assert api.code == 401 and api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers
