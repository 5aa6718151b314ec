"""Static files when the app serves them itself (nginx serves them in production), and
``/favicon.ico`` and ``/robots.txt``, which browsers and crawlers ask for at the root.

A missing file gets the app's own "Page not found" page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

import limits
from handlers.errors import DEFAULT_MESSAGES, error_page
from handlers.headers import PAGE_HEADERS, static_headers
from handlers.services import services
from observability.logs import REQUEST_ID_HEADER, request_id

STATIC_ROOT = Path(__file__).resolve().parents[1] / "static"


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static handler, plus ``X-Served-By`` and ``nosniff``, and our 404 page."""

    def set_default_headers(self) -> None:
        self._headers.update(static_headers(services(self.application).served_by))
        self._headers[REQUEST_ID_HEADER] = request_id(self)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._headers.update(PAGE_HEADERS)
        self.set_header("Cache-Control", "no-store")
        message = DEFAULT_MESSAGES.get(status_code, self._reason)
        self.render(
            "error.html",
            served_by=services(self.application).served_by,
            flash=None,
            limits=limits,
            **error_page(status_code, message),
        )


def root_files() -> list[tuple[str, type, dict[str, Any]]]:
    """Routes of the files browsers and crawlers expect at the site's root."""
    return [(r"/(favicon\.ico|robots\.txt)", StaticHandler, {"path": str(STATIC_ROOT)})]
