"""Static files when the app serves them itself (nginx serves them in production)."""

from __future__ import annotations

import tornado.web


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static handler, plus the ``X-Served-By`` header every response carries."""

    def set_default_headers(self) -> None:
        self.set_header("X-Served-By", self.application.settings["resources"].served_by)
        self.set_header("X-Content-Type-Options", "nosniff")
