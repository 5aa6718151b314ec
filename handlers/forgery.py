"""Cross-site request forgery: Tornado's ``_xsrf`` token, made stricter.

* The token is taken from the form body or the ``X-XSRFToken`` header only, never
  from the URL: a token in a query string lands in access logs and ``Referer``
  headers. A POST with ``_xsrf`` in its query answers 403.
* A browser's ``Origin`` header (or, when it sends none, the origin of its
  ``Referer``) must be this site's own; ``Origin: null`` is refused. Clients that send
  neither (scripts, API clients) rely on the token alone.
* The token is rotated at sign-in and sign-out (:meth:`Forgery.rotate_xsrf_token`),
  so a token planted or seen before is worth nothing after.
* The ``_xsrf`` cookie is Secure over HTTPS and, with ``--secure_cookies``, always,
  and then named ``__Host-_xsrf`` (the application's ``xsrf_cookie_name``).
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

import tornado.web

from handlers.errors import AppError

XSRF_IN_URL = "Send the XSRF token in the form body or the X-XSRFToken header, not in the URL."
CROSS_SITE = "Cross-site request refused: it did not come from this site's own pages."


class Forgery(tornado.web.RequestHandler):
    """Mixin: the stricter XSRF check, token rotation and Secure cookies."""

    def check_xsrf_cookie(self) -> None:
        if "_xsrf" in self.request.query_arguments:
            raise AppError(403, XSRF_IN_URL)
        headers = self.request.headers
        origin = headers.get("Origin")
        if origin is None and "Referer" in headers:
            parts = urlsplit(headers["Referer"])
            origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        if origin is not None and origin not in self.own_origins():
            raise AppError(403, CROSS_SITE)
        super().check_xsrf_cookie()

    def own_origins(self) -> set[str]:
        """This site's origin as the browser names it (https also with secure cookies)."""
        host = self.request.host
        origins = {f"{self.request.protocol}://{host}"}
        if self.settings.get("secure_cookies"):
            origins.add(f"https://{host}")
        return origins

    def rotate_xsrf_token(self) -> None:
        """A new token and ``_xsrf`` cookie from this response on."""
        self._raw_xsrf_token = (None, os.urandom(16), time.time())
        if hasattr(self, "_xsrf_token"):
            del self._xsrf_token
        self.xsrf_token  # noqa: B018  (sets the new cookie)

    def set_cookie(self, name: str, value: str | bytes, **kwargs: Any) -> None:
        """Every cookie Secure over HTTPS or with ``--secure_cookies``."""
        if self.settings.get("secure_cookies") or self.request.protocol == "https":
            kwargs["secure"] = True
        super().set_cookie(name, value, **kwargs)
