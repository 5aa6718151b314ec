"""``BaseHandler``: what every page and API handler shares.

Once per request, in ``prepare``, it resolves the session (one Redis round trip) and
from it the signed-in user, without touching MariaDB. It decides between HTML and JSON
(``Accept``), turns every error into a clear 4xx/5xx page or JSON envelope
``{"error": true, "message": ...}`` (never a traceback), and sets the headers every
response carries: ``X-Served-By``, ``Cache-Control: no-store``, ``Vary`` and the
security headers.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import tornado.web
from tornado import httputil
from tornado.web import HTTPError

from handlers.negotiation import prefers_json
from resources import PAGE_HEADERS, Resources
from sessions import SessionMixin, SessionUnavailable
from storage.errors import StorageUnavailable

log = logging.getLogger("app")
MAX_BODY_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = "5"

DEFAULT_MESSAGES = {
    400: "Bad request.",
    401: "Please sign in.",
    403: "Forbidden.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large (the limit is 64 KB).",
    429: "Too many attempts. Please wait and try again.",
    503: "The service is temporarily unavailable. Please try again shortly.",
}


class AppError(HTTPError):
    """An error whose message is meant for the user."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.message = message
        self.headers = headers or {}


class BaseHandler(SessionMixin, tornado.web.RequestHandler):
    #: Answer JSON whatever the Accept header says (API-only routes).
    json_only = False
    #: Resolve the session in ``prepare``. When False, the handler does it itself.
    load_session_first = True
    #: When Redis is down: True renders as signed out, False answers 503.
    session_optional = False

    _json_args: dict[str, str] | None = None
    _cookie_values: dict[str, str] | None = None

    def initialize(self) -> None:
        self.res.request_started()

    def on_finish(self) -> None:
        self.res.request_finished()

    @property
    def res(self) -> Resources:
        return self.application.settings["resources"]  # type: ignore[no-any-return]

    def set_default_headers(self) -> None:
        # Constant, known-good values: assigned directly, without set_header's checks.
        self._headers.update(self.res.default_headers)

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """Like Tornado's, from a plain dict: ``request.cookies`` builds a Morsel object
        per cookie, a measurable share of a small request."""
        if self._cookie_values is None:
            self._cookie_values = httputil.parse_cookie(self.request.headers.get("Cookie", ""))
        return self._cookie_values.get(name, default)

    def compute_etag(self) -> None:
        """No ETag: these responses are never cached (``no-store``), hashing them is waste."""
        return None

    def check_etag_header(self) -> bool:
        """No ETag is ever computed here, so no If-None-Match can match."""
        return False

    @functools.cached_property
    def wants_json(self) -> bool:
        return self.json_only or prefers_json(self.request.headers.get("Accept"))

    # ----- request life cycle ----------------------------------------------------
    async def prepare(self) -> None:
        if len(self.request.body) > MAX_BODY_BYTES:
            raise AppError(413, DEFAULT_MESSAGES[413])
        if self.load_session_first:
            await self.resolve_user()

    async def resolve_user(self) -> dict[str, Any] | None:
        """Load the session and set ``current_user`` from it (no database query)."""
        try:
            session = await self.load_session()
        except SessionUnavailable:
            if not self.session_optional:
                raise
            log.warning(
                "Redis unavailable: %s %s served as signed out",
                self.request.method,
                self.request.path,
            )
            session = self.session
        user = None
        if session.user_id is not None:
            user = {"user_id": session.user_id, "user_name": session.get("user_name", "")}
        self.current_user = user
        return user

    def require_user(self) -> dict[str, Any]:
        """The signed-in user, or stop here: 401 for JSON, back to the sign-in page."""
        user: dict[str, Any] | None = self.current_user
        if user is None:
            self.signed_out()
        assert user is not None
        return user

    def signed_out(self) -> None:
        if self.wants_json:
            raise AppError(401, DEFAULT_MESSAGES[401])
        self.redirect("/", status=303 if self.request.method == "POST" else 302)
        raise tornado.web.Finish()

    # ----- input -----------------------------------------------------------------
    def field(self, name: str) -> str | None:
        """A form field exactly as sent, or a string member of a JSON object body.

        Not ``get_body_argument``: it strips whitespace and turns control characters
        into spaces, which would silently change a password. Validation decides instead.
        """
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() == "application/json":
            if self._json_args is None:
                self._json_args = _parse_json_object(self.request.body)
            return self._json_args.get(name)
        values = self.request.body_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise AppError(400, "Form fields must be valid UTF-8 text.") from None

    # ----- output ----------------------------------------------------------------
    async def save_session(self) -> None:
        """Commit the session's changes; a session ended meanwhile means signed out."""
        if not await self.commit_session():
            self.signed_out()

    async def reply(
        self,
        message: Any,
        *,
        status: int = 200,
        template: str | None = None,
        redirect_to: str | None = None,
        **namespace: Any,
    ) -> None:
        """Commit the session, then answer: JSON envelope, a page, or 303 redirect."""
        await self.save_session()
        if self.wants_json:
            self.set_status(status)
            self.write_json(False, message)
        elif redirect_to is not None:
            self.redirect(redirect_to, status=303)
        else:
            assert template is not None
            self.set_status(status)
            self.render(template, **namespace)

    def write_json(self, error: bool, message: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(_JSON.encode({"error": error, "message": message}))

    def render(self, template_name: str, **kwargs: Any) -> Any:
        """A page: also the headers that protect what a browser renders."""
        self._headers.update(PAGE_HEADERS)
        return super().render(template_name, **kwargs)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["served_by"] = self.res.served_by
        return namespace

    # ----- errors ----------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message, headers = self._describe_error(status_code, exc)
        if isinstance(exc, SessionUnavailable | StorageUnavailable):
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
            self.render("error.html", status_code=status_code, message=message)

    def _describe_error(
        self, status_code: int, exc: BaseException | None
    ) -> tuple[str, dict[str, str]]:
        if isinstance(exc, AppError):
            return exc.message, dict(exc.headers)
        if isinstance(exc, SessionUnavailable | StorageUnavailable):
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
        if isinstance(value, SessionUnavailable | StorageUnavailable):
            log.warning(
                "%s %s: backing service unavailable: %s",
                self.request.method,
                self.request.path,
                value,
            )
            return
        super().log_exception(typ, value, tb)


def _parse_json_object(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise AppError(400, "Request body is not valid JSON.") from None
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        raise AppError(400, "Request body must be a JSON object whose values are strings.")
    try:
        for name, value in data.items():
            name.encode("utf-8")
            value.encode("utf-8")
    except UnicodeEncodeError:  # e.g. a lone surrogate escape, "\ud800"
        raise AppError(400, "Request body strings must be valid Unicode text.") from None
    return dict(data)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


_JSON = json.JSONEncoder(default=_json_default)  # made once, not per response
