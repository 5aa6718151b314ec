"""Reading a request: form fields or a JSON object body, cookies, the body limit."""

from __future__ import annotations

import json
from collections.abc import Mapping

import tornado.web
from tornado import httputil

from handlers.errors import DEFAULT_MESSAGES, AppError
from limits import MAX_BODY_BYTES


class Inputs(tornado.web.RequestHandler):
    """Mixin: ``field(name)`` for form and JSON bodies alike, a cheaper ``get_cookie``."""

    _json_args: dict[str, str] | None = None
    _cookie_values: dict[str, str] | None = None

    def check_body_size(self) -> None:
        """413 for a body over the app's limit (the server's own cap is higher)."""
        if len(self.request.body) > MAX_BODY_BYTES:
            raise AppError(413, DEFAULT_MESSAGES[413])

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """Like Tornado's, from a plain dict: ``request.cookies`` builds a Morsel object
        per cookie, a measurable share of a small request."""
        if self._cookie_values is None:
            self._cookie_values = httputil.parse_cookie(self.request.headers.get("Cookie", ""))
        return self._cookie_values.get(name, default)

    def field(self, name: str) -> str | None:
        """A form field exactly as sent, or a string member of a JSON object body.

        Not ``get_body_argument``: it strips whitespace and turns control characters
        into spaces, which would silently change a password. Validation decides instead.
        """
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() == "application/json":
            if self._json_args is None:
                self._json_args = parse_json_object(self.request.body)
            return self._json_args.get(name)
        values = self.request.body_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise AppError(400, "Form fields must be valid UTF-8 text.") from None


def parse_json_object(body: bytes) -> dict[str, str]:
    """A JSON object whose values are all strings, or :class:`AppError` 400."""
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
