"""Static files when the app serves them itself (nginx serves them in production)."""

from __future__ import annotations

import tornado.web

from handlers.headers import static_headers
from handlers.services import services
from observability.logs import REQUEST_ID_HEADER, request_id


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static handler, plus ``X-Served-By`` and ``nosniff``."""

    def set_default_headers(self) -> None:
        self._headers.update(static_headers(services(self.application).served_by))
        self._headers[REQUEST_ID_HEADER] = request_id(self)
