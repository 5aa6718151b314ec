"""One-time confirmations after an action ("Signed in.", "Status posted."), and where a
person goes back to after signing in.

A flash crosses a redirect in a short cookie that names a message by its code (never
text taken from a request); the next rendered page shows it and clears the cookie. A
cookie rather than the session: the message must outlive a sign-out or an ended
session, and nothing is stored in Redis for a visitor who is not signed in.

``next`` (after signing in, go back where you were) is only ever a local path.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlencode

import tornado.web

FLASH_COOKIE = "flash"
#: code -> what the page says
MESSAGES = {
    "signed_up": "Welcome! Your account is ready and you are signed in.",
    "signed_in": "Signed in.",
    "posted": "Status posted.",
    "signed_out": "Signed out.",
    "ended": "Your session ended \u2014 sign in to continue.",
    "session_ended": "That session has been ended: its browser is signed out.",
    "others_ended": "Every other session has been ended.",
    "this_ended": "You ended this session, so you are signed out.",
}
#: Codes shown as a warning rather than a confirmation.
WARNINGS = {"ended"}

# A path on this site: one "/", then no second "/" or "\" (which browsers read as
# another host), no control characters or white space.
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\x00-\x1f\x7f\\]{0,2000}")


def local_path(value: str | None) -> str | None:
    """``value`` if it is a path on this site, else None (never another host)."""
    if value and _LOCAL_PATH.fullmatch(value):
        return value
    return None


def sign_in_url(next_path: str | None) -> str:
    """The sign-in page, returning to ``next_path`` afterwards."""
    path = local_path(next_path)
    if path is None or path == "/":
        return "/"
    return "/?" + urlencode({"next": path})


class Flash(tornado.web.RequestHandler):
    """Mixin: ``flash(code)`` before a redirect; ``flash_message`` on the next page."""

    def flash(self, code: str) -> None:
        assert code in MESSAGES, code
        self.set_cookie(
            FLASH_COOKIE,
            code,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
        )

    @functools.cached_property
    def flash_code(self) -> str | None:
        """The code the previous response left, if it is one of ours."""
        code = self.get_cookie(FLASH_COOKIE)
        return code if code in MESSAGES else None

    def take_flash(self) -> tuple[str, bool] | None:
        """The message to show once (and whether it warns); clears the cookie."""
        if self.get_cookie(FLASH_COOKIE) is None:
            return None
        self.clear_cookie(FLASH_COOKIE, path="/")
        code = self.flash_code
        return None if code is None else (MESSAGES[code], code in WARNINGS)
