"""``GET /metrics``: every worker's metrics added up, in Prometheus text format."""

from __future__ import annotations

import tornado.web

from handlers.services import services
from observability.metrics import CONTENT_TYPE, Metrics


class MetricsHandler(tornado.web.RequestHandler):
    """Served on the app's port, or alone on ``--metrics_port``; never cached."""

    def initialize(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics

    def get(self) -> None:
        metrics = self.metrics or services(self.application).metrics
        if metrics is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.write(metrics.render())
