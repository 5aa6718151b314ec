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

    def check_body_size(self) -> None:
        """413 for a body over the app's limit (the server's own cap is higher)."""
        if len(self.request.body) > MAX_BODY_BYTES:
            raise AppError(413, DEFAULT_MESSAGES[413])

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """Like Tornado's, by scanning the ``Cookie`` header for the one name asked:
        ``request.cookies`` builds a Morsel object per cookie, and even parsing every
        cookie into a dict is a measurable share of a small request."""
        header = self.request.headers.get("Cookie")
        value = None if header is None else cookie_value(header, name)
        return default if value is None else value

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


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, exactly as
    ``tornado.httputil.parse_cookie(header).get(name)`` gives it.

    The usual header (``a=1; sid=...``, the name once) takes a few string searches;
    anything unusual (the name twice, odd spacing, a quoted value) is handed to
    ``parse_cookie``, so the answer never differs from Tornado's.
    """
    at = header.rfind(name + "=")
    if at < 0:
        return None if name not in header else httputil.parse_cookie(header).get(name)
    start = at + len(name) + 1
    end = header.find(";", start)
    value = header[start:] if end < 0 else header[start:end]
    before = header[at - 1] if at else ";"
    if (
        (before == ";" or (before == " " and (at == 1 or header[at - 2] == ";")))
        and (end < 0 or header.find(name, end) < 0)  # no later cookie of that name
        and value[:1] != '"'
    ):
        return value.strip()
    return httputil.parse_cookie(header).get(name)
