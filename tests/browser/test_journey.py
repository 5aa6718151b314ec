"""A new user's journey, and two browsers of one user (issue 10: new pages, 1, 3, 5, 11).

The journey runs through nginx in front of two app processes, as ``make stack`` serves
the app: each reload may reach either process, and the home page shows the count of
processes that served the session grow while the user stays signed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Stack, api_post, check_page, sign_in, sign_up


def served_count(page: Page) -> int:
    return int(page.locator(".served-count").inner_text())


def test_journey_through_nginx(new_context: Callable[..., BrowserContext], stack: Stack) -> None:
    page = new_context(base_url=stack.nginx_url).new_page()
    person = sign_up(page, "Nadia")
    expect(page.locator("#flash")).to_have_text(
        "Welcome! Your account is ready and you are signed in."
    )
    expect(page.locator(".views")).to_have_text(
        "You have opened this page 1 time since you signed in."
    )
    # Post with JavaScript: no reload, the new status on top.
    page.locator("#status").fill("hello from the journey")
    page.get_by_role("button", name="Post").click()
    expect(page.locator(".statuses li p").first).to_have_text("hello from the journey")
    # Reload through nginx: the requests reach both processes, the user stays signed in.
    for _ in range(6):
        page.reload()
        expect(page.locator("h1")).to_have_text("Hi, Nadia")
        if served_count(page) == 2:
            break
    assert served_count(page) == 2, page.locator(".served").inner_text()
    expect(page.locator(".served")).to_contain_text("This session has been served by 2 processes")
    check_page(page, "home-through-nginx")
    # Your sessions: this one, served by both processes.
    page.get_by_role("link", name="Your sessions").first.click()
    expect(page.locator(".sessions li.current .served-count")).to_have_text("2")
    # Sign out; the back button shows no private page.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#flash")).to_have_text("Signed out.")
    page.go_back()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "Nadia" not in page.content()
    # Signing in again counts from one.
    sign_in(page, person)
    page.wait_for_url("**/home")
    expect(page.locator("#flash")).to_have_text("Signed in.")
    expect(page.locator(".views-count")).to_have_text("1")


def test_two_browsers_end_each_others_session(
    new_context: Callable[..., BrowserContext],
) -> None:
    first = new_context().new_page()
    person = sign_up(first, "Omar")
    second = new_context().new_page()
    sign_in(second, person)
    second.wait_for_url("**/home")
    second.locator("#status").fill("typed, not yet sent")

    first.goto("/sessions")
    sessions = first.locator(".sessions > li")
    expect(sessions).to_have_count(2)
    expect(sessions.first.locator(".badge")).to_have_text("This session")
    expect(sessions.nth(1)).to_contain_text("Chrome")
    check_page(first, "sessions")
    sessions.nth(1).get_by_role("button", name="End this session").click()
    expect(first.locator("#flash")).to_contain_text("That session has been ended")
    expect(first.locator(".sessions > li")).to_have_count(1)

    # The other browser's next request is signed out: its post is refused, it lands on
    # the sign-in page with the message, and after signing in finds its draft again.
    second.get_by_role("button", name="Post").click()
    second.wait_for_url(re.compile(r"/\?next=%2Fhome$"))
    expect(second.locator("#flash")).to_have_text("Your session ended \u2014 sign in to continue.")
    check_page(second, "session-ended")
    sign_in(second, person, path=None)
    second.wait_for_url(re.compile(r"/home$"))
    expect(second.locator("#status")).to_have_value("typed, not yet sent")

    # Now the second ends every other session: the first is signed out at once.
    second.goto("/sessions")
    second.get_by_role("button", name="End all other sessions").click()
    expect(second.locator("#flash")).to_have_text("Every other session has been ended.")
    first.goto("/home")
    expect(first.locator("#flash")).to_have_text("Your session ended \u2014 sign in to continue.")
    assert first.url.endswith("/?next=%2Fhome")


def test_older_statuses_are_reachable(page: Page) -> None:
    """Defect 1: after 151 posts the list ended at #51 with no way further."""
    sign_up(page, "Pia")
    for i in range(1, 152):
        status, _ = api_post(page.context, "/addStatus", {"status": f"post #{i}"})
        assert status == 201
    page.reload()
    texts = page.locator(".statuses li p")
    expect(texts.first).to_have_text("post #151")
    seen = page.locator(".statuses li").count()
    pages = 1
    while page.get_by_role("link", name="Older statuses").count():
        page.get_by_role("link", name="Older statuses").click()
        pages += 1
        seen += page.locator(".statuses li").count()
    expect(texts.last).to_have_text("post #1")
    assert seen == 151 and pages == 4
    check_page(page, "home-older")


def test_the_page_view_counter_counts_visits_only(
    new_context: Callable[..., BrowserContext],
) -> None:
    """Defect 11: every post counted as a page view (150 posts took it to 161)."""
    page = new_context(javascript=False).new_page()
    sign_up(page, "Quin")  # the first visit
    for i in range(3):  # each post redirects to /home: the same visit, not a new one
        page.locator("#status").fill(f"post {i}")
        page.get_by_role("button", name="Post").click()
        expect(page.locator(".statuses li")).to_have_count(i + 1)
    page.goto("/home")  # the second visit
    expect(page.locator(".views")).to_have_text(
        "You have opened this page 2 times since you signed in."
    )


def test_a_draft_survives_an_ended_session_without_javascript(
    new_context: Callable[..., BrowserContext],
) -> None:
    """Defect 3 without JavaScript: the status being typed came back in no form."""
    page = new_context(javascript=False).new_page()
    person = sign_up(page, "Ray")
    other = new_context().new_page()
    sign_in(other, person)
    other.wait_for_url("**/home")
    other.goto("/sessions")
    other.get_by_role("button", name="End all other sessions").click()
    expect(other.locator("#flash")).to_have_text("Every other session has been ended.")

    page.locator("#status").fill("written while\nsigned out elsewhere")
    page.get_by_role("button", name="Post").click()
    expect(page.locator("#flash")).to_have_text("Your session ended \u2014 sign in to continue.")
    expect(page.locator("#draft-kept")).to_be_visible()
    check_page(page, "session-ended-no-js")
    sign_in(page, person, path=None)
    page.wait_for_url("**/home")
    expect(page.locator("#status")).to_have_value("written while\nsigned out elsewhere")
    page.reload()  # put back once, not forever
    expect(page.locator("#status")).to_have_value("")
