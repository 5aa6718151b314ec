"""Errors a user sees: :class:`AppError`, the default messages, the error page or JSON.

Every error, raised anywhere in a handler, ends in :meth:`ErrorPages.write_error`: a
clear page, or the JSON envelope ``{"error": true, "message": ...}``, never a
traceback. Redis or MariaDB being unavailable, or the hashing queue full, becomes 503
with ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado.web import HTTPError

from accounts.passwords import HashingBusy
from accounts.throttle import ThrottleUnavailable
from handlers.replies import Replies
from limits import MAX_BODY_BYTES
from sessions import SessionUnavailable
from storage.errors import StorageUnavailable

log = logging.getLogger("app")
RETRY_AFTER_SECONDS = "5"
#: A backing service did not answer: 503 with Retry-After, logged without a traceback.
UNAVAILABLE = (SessionUnavailable, StorageUnavailable, ThrottleUnavailable)

DEFAULT_MESSAGES = {
    400: "Bad request.",
    401: "Please sign in.",
    403: "Forbidden.",
    404: "Not found.",
    405: "Method not allowed.",
    413: f"Request body too large (the limit is {MAX_BODY_BYTES // 1024} KB).",
    429: "Too many attempts. Please wait and try again.",
    503: "The service is temporarily unavailable. Please try again shortly.",
}


#: The heading of an error page, written for people (the message follows it).
HEADINGS = {
    400: "That request could not be used",
    401: "Please sign in",
    403: "This form has expired",
    404: "Page not found",
    405: "Nothing to see at this address",
    413: "That was too much",
    429: "Too many attempts",
    503: "Temporarily unavailable",
}
#: Page texts that replace a message meant for API clients.
PAGE_MESSAGES = {
    403: "The page was open for too long, or you signed in or out in another tab. "
    "Go back, reload the page, and try again.",
    404: "There is no page at this address. It may have moved, or the link may be mistyped.",
    405: "This address only takes form submissions. Use the links on the site instead.",
}


def error_page(status_code: int, message: str) -> dict[str, Any]:
    """What ``error.html`` shows for an error (and the status it writes)."""
    return {
        "status_code": status_code,
        "heading": HEADINGS.get(status_code, "Something went wrong"),
        "message": PAGE_MESSAGES.get(status_code, message)
        if message in _GENERIC or status_code == 403
        else message,
    }


class AppError(HTTPError):
    """An error whose message is meant for the user."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.message = message
        self.headers = headers or {}


_GENERIC = set(DEFAULT_MESSAGES.values())


class ErrorPages(Replies):
    """Mixin: every error as a page or JSON envelope, and quiet logs for outages."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message, headers = self._describe_error(status_code, exc)
        if isinstance(exc, (*UNAVAILABLE, HashingBusy)):
            status_code = 503
            self.set_status(503)
        if status_code == 503:
            headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
        for name, value in headers.items():
            self.set_header(name, value)
        self.set_header("Cache-Control", "no-store")
        if self.wants_json:
            self.write_json(True, message)
        else:
            self.render("error.html", **error_page(status_code, message))

    def _describe_error(
        self, status_code: int, exc: BaseException | None
    ) -> tuple[str, dict[str, str]]:
        if isinstance(exc, AppError):
            return exc.message, dict(exc.headers)
        if isinstance(exc, HashingBusy):
            return (
                "The server is busy checking passwords. Please try again in a moment.",
                {"Retry-After": str(exc.retry_after)},
            )
        if isinstance(exc, UNAVAILABLE):
            return DEFAULT_MESSAGES[503], {}
        detail = getattr(exc, "log_message", None) or ""
        if status_code == 403 and "xsrf" in detail.lower():
            return (
                "Invalid or missing XSRF token. Reload the page and try again "
                "(API clients: send the _xsrf cookie's value as X-XSRFToken)."
            ), {}
        if status_code == 400 and detail.startswith("Invalid unicode"):
            return "Form fields must be valid UTF-8 text.", {}
        if status_code >= 500:
            return "Something went wrong on our side. Please try again.", {}
        return DEFAULT_MESSAGES.get(status_code, self._reason), {}

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, (*UNAVAILABLE, HashingBusy)):
            log.warning(
                "%s %s: backing service unavailable: %s",
                self.request.method,
                self.request.path,
                value,
            )
            return
        super().log_exception(typ, value, tb)
