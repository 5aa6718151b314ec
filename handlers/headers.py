"""Headers every response carries, and the ones that protect rendered pages.

Every page and API answer: ``X-Served-By`` (``host:pid``), ``X-Request-Id`` (see
:mod:`observability.logs`), ``Cache-Control: no-store``
(responses carry a session: never cache them), ``Vary: Accept, Cookie`` and
``X-Content-Type-Options: nosniff``. Rendered pages add ``PAGE_HEADERS``
(CSP, X-Frame-Options, Referrer-Policy); JSON answers do without. Static files carry
``X-Served-By`` and ``nosniff`` only (they may be cached).
"""

from __future__ import annotations

import functools

from handlers.services import Services
from observability.logs import REQUEST_ID_HEADER, request_id

#: Headers that protect pages (a browser renders them); JSON answers do without.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
#: Headers every response carries, static files included.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


@functools.cache
def default_headers(served_by: str) -> dict[str, str]:
    """Headers every page and API response carries (built once per process)."""
    return {
        "X-Served-By": served_by,
        "Cache-Control": "no-store",
        "Vary": "Accept, Cookie",
        **NOSNIFF,
    }


@functools.cache
def static_headers(served_by: str) -> dict[str, str]:
    """Headers of a static file: which process served it, and no type sniffing."""
    return {"X-Served-By": served_by, **NOSNIFF}


class ResponseHeaders(Services):
    """Mixin: the default headers, page headers on request, and no ETags."""

    def set_default_headers(self) -> None:
        # Constant, known-good values: assigned directly, without set_header's checks.
        self._headers.update(default_headers(self.res.served_by))
        self._headers[REQUEST_ID_HEADER] = request_id(self)

    def protect_page(self) -> None:
        """Add the headers that protect what a browser renders."""
        self._headers.update(PAGE_HEADERS)

    def compute_etag(self) -> None:
        """No ETag: these responses are never cached (``no-store``), hashing them is waste."""
        return None

    def check_etag_header(self) -> bool:
        """No ETag is ever computed here, so no If-None-Match can match."""
        return False
