"""Posting statuses in a real browser, with and without JavaScript (issue 10: 2, 6, 7)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import check_page, sign_up

EMOJI = "\U0001f600"  # one code point, two UTF-16 units: browsers' maxlength counts it twice


def test_post_without_reload(page: Page) -> None:
    sign_up(page, "Eve")
    page.evaluate("() => { window.notReloaded = true; }")
    page.locator("#status").fill("first <b>post</b>")
    page.get_by_role("button", name="Post").click()
    expect(page.locator("#flash")).to_have_text("Status posted.")
    expect(page.locator(".statuses li p").first).to_have_text("first <b>post</b>")
    expect(page.locator("#status")).to_have_value("")
    assert page.evaluate("() => window.notReloaded") is True  # no page load happened
    page.locator("#status").fill("second")
    page.get_by_role("button", name="Post").click()
    expect(page.locator(".statuses li p")).to_have_text(["second", "first <b>post</b>"])
    page.reload()  # what the page showed is what was stored
    expect(page.locator(".statuses li p")).to_have_text(["second", "first <b>post</b>"])
    check_page(page, "home")


def test_post_without_javascript(new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(javascript=False).new_page()
    sign_up(page, "Fay")
    page.locator("#status").fill("no script needed")
    page.get_by_role("button", name="Post").click()
    page.wait_for_url("**/home")
    expect(page.locator(".statuses li p").first).to_have_text("no script needed")


def test_counter_counts_code_points_and_line_breaks_once(page: Page) -> None:
    """Defects 2 and 7: emoji counted double by the browser, CR LF counted twice."""
    sign_up(page, "Gus")
    box, counter = page.locator("#status"), page.locator("#status-count")
    box.fill(EMOJI * 999 + "\n")
    expect(counter).to_have_text("999 of 1000 characters")  # a trailing break is trimmed
    box.fill("a\n" * 499 + "b")
    expect(counter).to_have_text("999 of 1000 characters")
    box.fill(EMOJI * 1000)
    expect(counter).to_have_text("1000 of 1000 characters")
    page.get_by_role("button", name="Post").click()
    expect(page.locator("#flash")).to_have_text("Status posted.")
    expect(page.locator(".statuses li p").first).to_have_text(EMOJI * 1000)
    box.fill(EMOJI * 1001)
    expect(counter).to_have_text("1 character too many (1001 of 1000)")


def test_an_over_long_paste_is_kept_and_explained(page: Page) -> None:
    """Defect 7: maxlength cut a paste silently; now the text stays and the excess is named."""
    sign_up(page, "Hal")
    box = page.locator("#status")
    box.focus()
    page.keyboard.insert_text("x" * 1200)  # what a paste does
    expect(box).to_have_value("x" * 1200)
    expect(page.locator("#status-count")).to_have_text("200 characters too many (1200 of 1000)")
    page.get_by_role("button", name="Post").click()
    error = page.locator("#status-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Error: Status must be at most 1000 characters")
    expect(box).to_have_attribute("aria-invalid", "true")
    assert "status-error" in (box.get_attribute("aria-describedby") or "").split()
    expect(box).to_be_focused()
    assert page.title().startswith("Error: ")
    expect(page.locator(".statuses li")).to_have_count(0)
    check_page(page, "post-too-long")
    box.fill("x" * 1000)  # fixed: the error goes away
    expect(error).to_be_hidden()
    assert not page.title().startswith("Error: ")


def test_an_over_long_post_without_javascript_comes_back_fixable(
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(javascript=False).new_page()
    sign_up(page, "Ida")
    box = page.locator("#status")
    box.fill("y" * 1200)
    expect(box).to_have_value("y" * 1200)  # no maxlength: nothing is cut
    page.get_by_role("button", name="Post").click()
    expect(page.locator("#status-error")).to_contain_text("at most 1000 characters")
    expect(box).to_have_value("y" * 1200)
    expect(box).to_be_focused()
    assert page.title().startswith("Error: ")
    check_page(page, "post-too-long-no-js")


def test_times_are_relative_with_the_local_time_on_hover(page: Page) -> None:
    """Defect 6: times were the server's clock with no zone."""
    sign_up(page, "Jo")
    page.locator("#status").fill("what time is it")
    page.get_by_role("button", name="Post").click()
    page.reload()
    time = page.locator(".statuses time").first
    stamp = time.get_attribute("datetime") or ""
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() is not None, stamp  # ISO-8601 with its offset
    expect(time).to_have_text("just now")
    local = page.evaluate(
        "s => new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'})"
        ".format(new Date(s))",
        stamp,
    )
    expect(time).to_have_attribute("title", local)
    # The browser is in Los Angeles: the title is its local time, not the server's UTC.
    hour = int(re.search(r"(\d+):\d\d", local).group(1))  # type: ignore[union-attr]
    utc_hour = moment.hour % 12 or 12
    assert hour != utc_hour, (local, stamp)


def test_times_without_javascript_name_their_zone(
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(javascript=False).new_page()
    sign_up(page, "Kit")
    page.locator("#status").fill("no script")
    page.get_by_role("button", name="Post").click()
    page.wait_for_url("**/home")
    expect(page.locator(".statuses time").first).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
    )


def test_the_script_runs_under_the_pages_csp(new_context: Callable[..., BrowserContext]) -> None:
    """No inline code anywhere: the one static script works with the CSP enforced."""
    page = new_context(csp=True).new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    sign_up(page, "Lu")
    assert page.locator("script:not([src])").count() == 0
    page.locator("#status").fill("csp " + EMOJI)
    expect(page.locator("#status-count")).to_have_text("5 of 1000 characters")
    page.get_by_role("button", name="Post").click()
    expect(page.locator("#flash")).to_have_text("Status posted.")
    assert refused == []
