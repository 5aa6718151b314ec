"""Real-browser tests: Playwright for Python driving Debian's Chromium.

They run as their own pytest invocation (``pytest tests/browser``, which ``make test``
runs after the rest; ``setup.cfg`` keeps them out of a plain ``pytest``): Playwright's
synchronous API keeps an asyncio event loop running for as long as it is started, and
the rest of the suite's asyncio tests cannot run beside it.

What they run against, started once per run and stopped at its end:

* two ``server.py`` instances (one process each, the suite's own database and Redis
  prefix, one cookie secret), so one session can be served by two processes;
* nginx, from ``deploy/nginx.conf``, in front of both: it spreads requests over them
  one by one, as ``make stack`` does.

Chromium is ``/usr/bin/chromium`` (``scripts/ensure-chromium.sh``, run by ``make test``,
installs it with the emoji font); Playwright never downloads a browser. Every page state
a test reaches is checked with axe-core (shipped inside the ``axe-playwright-python``
package, injected only because these test contexts bypass the page's CSP) for 0 WCAG
2.1 A/AA violations, and photographed at 1280x800 and 390x844 into
``reports/screenshots/`` (or ``$BROWSER_SCREENSHOTS``). With
``BROWSER_SCREENSHOTS_DOCS=1`` the main ones are also written to ``docs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support import nginx as nginx_tools
from tests.support.server_process import REPO_ROOT, ServerProcess, free_port, start_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: A user far from UTC: times must be shown in the browser's zone, not the server's.
TIMEZONE = "America/Los_Angeles"
AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", REPO_ROOT / "reports" / "screenshots"))
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
#: The states shown in the README (written to docs/ with BROWSER_SCREENSHOTS_DOCS=1).
DOCS_STATES = {
    "start",
    "register-errors",
    "home-through-nginx",
    "post-too-long",
    "sessions",
    "session-ended",
    "not-found",
}
PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    others = [item.nodeid for item in items if here not in item.path.parents]
    if others and len(others) < len(items):
        raise pytest.UsageError(
            "the browser tests (tests/browser) run in their own pytest invocation: "
            "Playwright's event loop would break the asyncio tests beside them "
            f"(also selected: {others[0]} ...)"
        )


# ----- servers ------------------------------------------------------------------------------


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    url: str
    prefix: Path

    def stop(self) -> None:
        nginx_tools.stop(self.proc)


@dataclass
class Stack:
    """Two app instances and nginx in front of them."""

    apps: list[ServerProcess]
    nginx: Nginx

    @property
    def app_url(self) -> str:
        """One app instance, directly: a browser connection there stays on one process."""
        return self.apps[0].url

    @property
    def nginx_url(self) -> str:
        return self.nginx.url


def _start_nginx(prefix: Path, upstream_ports: list[int]) -> Nginx:
    nginx_bin = nginx_tools.nginx_binary()
    if nginx_bin is None:
        pytest.fail("nginx is not installed: run scripts/ensure-nginx.sh (make test does)")
    prefix.mkdir(parents=True)
    port = free_port()
    conf = nginx_tools.render_config(
        prefix, listen_port=port, upstream_ports=upstream_ports, worker_processes=1
    )
    proc = nginx_tools.start(nginx_bin, prefix, conf, prefix / "nginx.out")
    nginx = Nginx(proc, f"http://127.0.0.1:{port}", prefix)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nginx exited: {(prefix / 'nginx.out').read_text()}")
        try:
            with urllib.request.urlopen(nginx.url + "/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return nginx
        except OSError:
            time.sleep(0.1)
    nginx.stop()
    pytest.fail("nginx did not answer within 20 s")


@pytest.fixture(scope="session")
def stack(
    mysql_url: str, redis_url: str, redis_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("servers")
    apps: list[ServerProcess] = []
    nginx: Nginx | None = None
    try:
        for _ in range(2):
            apps.append(
                start_server(
                    mysql_url=mysql_url,
                    redis_url=redis_url,
                    redis_prefix=redis_prefix,
                    log_dir=logs,
                    processes=1,
                    args=["--xheaders"],
                )
            )
        nginx = _start_nginx(logs / "nginx", [app.port for app in apps])
        yield Stack(apps, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        for app in apps:
            app.stop()


# ----- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(chromium: Browser, stack: Stack) -> Iterator[Callable[..., BrowserContext]]:
    """``new_context(javascript=True, base_url=..., csp=False)``: a fresh browser profile.

    ``csp=False`` (the default) bypasses the page's CSP so that axe-core can be injected;
    ``csp=True`` keeps it, to prove the app's own script runs under it.
    """
    made: list[BrowserContext] = []

    def make(
        *, javascript: bool = True, base_url: str | None = None, csp: bool = False
    ) -> BrowserContext:
        context = chromium.new_context(
            base_url=base_url or stack.app_url,
            viewport=DESKTOP,
            java_script_enabled=javascript,
            bypass_csp=not csp,
            timezone_id=TIMEZONE,
            locale="en-US",
        )
        context.set_default_timeout(10_000)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


# ----- checking a page state: axe-core, no sideways scrolling, screenshots ------------------


def axe_violations(page: Page) -> list[dict[str, Any]]:
    loaded = "() => typeof window.axe === 'object'"
    if not page.evaluate(loaded):
        page.add_script_tag(content=AXE_SOURCE)
    if not page.evaluate(loaded):  # JavaScript is off in this context
        return _axe_on_copy(page)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return list(result["violations"])


def _axe_on_copy(page: Page) -> list[dict[str, Any]]:
    """Run axe on the page's document, as it is, in a context where scripts may run.

    The copy is served at the same address (so the stylesheet loads) without the page's
    own script, so it shows exactly what the browser without JavaScript shows.
    """
    html = re.sub(r"<script\b[^>]*>.*?</script>", "", page.content(), flags=re.S)
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(viewport=page.viewport_size, bypass_csp=True)
    try:
        copy = context.new_page()
        copy.route(page.url, lambda route: route.fulfill(body=html, content_type="text/html"))
        copy.goto(page.url)
        return axe_violations(copy)
    finally:
        context.close()


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(node["target"]) for node in v["nodes"][:3]]
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} at {targets}")
    return "\n".join(lines)


def check_page(page: Page, state: str) -> None:
    """Assert 0 axe WCAG 2.1 A/AA violations and no sideways scrolling, at desktop and
    phone width, and save a screenshot of each."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size or DESKTOP
    try:
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            violations = axe_violations(page)
            assert not violations, f"{state} at {label} width:\n{_describe(violations)}"
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= size["width"], f"{state} scrolls sideways at {label}: {width}px"
            shot = page.screenshot(full_page=True, animations="disabled", caret="initial")
            (SCREENSHOTS / f"{state}-{label}.png").write_bytes(shot)
            if os.environ.get("BROWSER_SCREENSHOTS_DOCS") == "1" and state in DOCS_STATES:
                DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                (DOCS_SCREENSHOTS / f"{state}-{label}.png").write_bytes(shot)
    finally:
        page.set_viewport_size(original)


# ----- people -------------------------------------------------------------------------------


def unique_email(name: str = "user") -> str:
    return f"{name.lower()[:20]}-{secrets.token_hex(6)}@example.com"


@dataclass
class Person:
    name: str
    email: str
    password: str = PASSWORD


def sign_up(page: Page, name: str = "Ada") -> Person:
    """Create an account through the sign-up form; the page ends on /home."""
    person = Person(name, unique_email(name))
    page.goto("/")
    page.get_by_label("Name").fill(person.name)
    page.locator("#register-email").fill(person.email)
    page.locator("#register-password").fill(person.password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/home")
    return person


def sign_in(page: Page, person: Person, path: str = "/") -> None:
    """Fill the sign-in form (on ``path``, default the start page) and submit it."""
    if path is not None:
        page.goto(path)
    page.locator("#login-email").fill(person.email)
    page.locator("#login-password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()


def api_post(context: BrowserContext, path: str, form: dict[str, str]) -> Any:
    """POST as the context's browser would with JavaScript (same cookies, XSRF header)."""
    token = next(c["value"] for c in context.cookies() if c["name"] == "_xsrf")
    reply = context.request.post(
        path,
        form=form,
        headers={"Accept": "application/json", "X-XSRFToken": token},
        max_redirects=0,
    )
    return reply.status, json.loads(reply.body() or b"null")
