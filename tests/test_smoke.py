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
    href = page.body.decode().split('href="', 2)[1].split('"')[0]
    assert href.startswith("/static/style.css?v=")
    resp = await browser.get(href)
    assert resp.code == 200 and resp.headers["X-Served-By"] == resources.served_by
    assert b"--accent" in resp.body
