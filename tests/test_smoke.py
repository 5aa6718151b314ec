import pytest

from tests.support.browser import body_json


@pytest.mark.gen_test
async def test_register_then_home(browser, unique_email):
    resp = await browser.register("Ann", unique_email())
    assert resp.code == 201, resp.body
    resp = await browser.get("/home", accept_json=True)
    assert body_json(resp)["message"]["views"] == 1
