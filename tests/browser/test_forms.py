"""Forms and error pages in a real browser (issue 10: defects 2, 3, 4, 5, 8)."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import check_page, sign_in, sign_up


def test_every_error_is_beside_its_field(page: Page) -> None:
    """Defect 4: only the first error, not tied to its field, focus on <body>."""
    page.goto("/")
    page.locator("#register-email").fill("not an address")
    page.locator("#register-password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_load_state()
    assert page.title().startswith("Error: ")
    for field, message in [
        ("register-name", "Name is required."),
        ("register-email", "Please enter a valid e-mail address."),
        ("register-password", "Password must be at least 8 characters."),
    ]:
        box = page.locator(f"#{field}")
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(box).to_have_accessible_description(re.compile(re.escape(message)))
        expect(page.locator(f"#{field}-error")).to_have_text(f"Error: {message}")
    expect(page.locator("#register-name")).to_be_focused()
    expect(page.locator("#register-email")).to_have_value("not an address")  # kept
    check_page(page, "register-errors")


def test_a_taken_address_offers_to_sign_in_instead(
    page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    person = sign_up(new_context().new_page(), "Rae")
    page.goto("/")
    page.locator("#register-name").fill("Rae again")
    page.locator("#register-email").fill(person.email)
    page.locator("#register-password").fill(person.password)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#register-email-error")).to_contain_text("already exists")
    page.get_by_role("link", name="Sign in instead").click()
    expect(page.locator("#login-email")).to_have_value(person.email)
    page.locator("#login-password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home")


def test_sign_in_returns_to_the_page_asked_for(page: Page) -> None:
    """Defect 3 (without a message: the visitor was never signed in)."""
    person = sign_up(page, "Sam")
    page.context.clear_cookies()
    page.goto("/sessions")
    assert page.url.endswith("/?next=%2Fsessions")
    expect(page.locator("#flash")).to_have_count(0)
    sign_in(page, person, path=None)
    page.wait_for_url("**/sessions")
    # Only local paths: another host in next= is ignored.
    page.context.clear_cookies()
    page.goto("/?next=//example.com/x")
    sign_in(page, person, path=None)
    page.wait_for_url("**/home")


def test_a_status_with_line_breaks_counts_each_once_without_javascript(
    new_context: Callable[..., BrowserContext],
) -> None:
    """Defect 2: the browser sends CR LF; the server counted each break twice."""
    page = new_context(javascript=False).new_page()
    sign_up(page, "Tia")
    text = "line\n" * 199 + "end"  # 998 characters; 1197 if each break counted twice
    page.locator("#status").fill(text)
    page.get_by_role("button", name="Post").click()
    page.wait_for_url("**/home")
    expect(page.locator("#flash")).to_have_text("Status posted.")
    expect(page.locator(".statuses li p").first).to_have_text(text)


def test_error_pages_are_for_people(page: Page) -> None:
    """Defect 8: no user or sign-out on error pages, a developer's 403 text."""
    sign_up(page, "Uma")
    reply = page.goto("/no/such/page")
    assert reply is not None and reply.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name="Back to your statuses")).to_be_visible()
    check_page(page, "not-found")
    reply = page.goto("/static/missing.css")
    assert reply is not None and reply.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    for path, target in [("/addStatus", "/home"), ("/login", "/home"), ("/register", "/home")]:
        page.goto(path)  # a signed-in user asking for / goes home
        assert page.url.endswith(target), (path, page.url)
    favicon = page.request.get("/favicon.ico")
    assert favicon.status == 200 and favicon.body()[:4] == b"\0\0\1\0"  # an ICO file
    robots = page.request.get("/robots.txt")
    assert robots.status == 200 and "User-agent: *" in robots.text()
    # A form whose XSRF token is stale: a page that says what to do.
    page.goto("/home")
    page.evaluate("() => document.querySelector('.post-form input[name=_xsrf]').value = 'x'")
    page.locator("#status").fill("stale")
    page.evaluate("() => document.querySelector('.post-form').submit()")
    expect(page.get_by_role("heading", name="This form has expired")).to_be_visible()
    expect(page.locator(".error-message")).to_contain_text("reload the page")
    check_page(page, "form-expired")


def test_change_password_page(page: Page) -> None:
    person = sign_up(page, "Vic")
    page.goto("/sessions")
    page.get_by_role("link", name="Change your password").click()
    check_page(page, "password")
    page.get_by_label("Current password").fill(person.password)
    page.get_by_label("New password", exact=True).fill("a new horse staple")
    page.get_by_label("New password again").fill("another horse staple")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-error")).to_contain_text("Error: ")
    expect(page.get_by_label("Current password")).to_be_focused()
    assert page.title().startswith("Error: ")
    check_page(page, "password-error")
