"""Build the Tornado application: routes, settings, templates and static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from handlers import routes
from handlers.metrics import MetricsHandler
from handlers.not_found import NotFoundHandler
from handlers.services import SETTING as SERVICES_SETTING
from handlers.static import STATIC_ROOT, StaticHandler
from observability.logs import TRUST_REQUEST_ID
from observability.metrics import Metrics
from observability.requests import finished_hook, route_patterns
from resources import Resources
from settings import AppConfig

ROOT = Path(__file__).resolve().parent


def make_app(config: AppConfig, resources: Resources) -> tornado.web.Application:
    settings: dict[str, Any] = {
        "template_path": str(ROOT / "templates"),
        "static_path": str(STATIC_ROOT),
        "cookie_secret": config.cookie_secrets,
        "key_version": config.key_version,
        "xsrf_cookies": True,
        "xsrf_cookie_name": "__Host-_xsrf" if config.secure_cookies else "_xsrf",
        "xsrf_cookie_kwargs": {"httponly": True, "samesite": "Lax", "path": "/"},
        "secure_cookies": config.secure_cookies,
        "login_url": "/",
        "debug": config.debug,
        "default_handler_class": NotFoundHandler,
        "static_handler_class": StaticHandler,
        SERVICES_SETTING: resources,
        TRUST_REQUEST_ID: config.serving.xheaders,
    }
    rules = routes(metrics=resources.metrics is not None and not config.metrics_port)
    patterns = route_patterns(rules)
    patterns.update({NotFoundHandler: "(not found)", StaticHandler: "/static/(.*)"})
    # Every finished request is counted and logged here (Tornado's access log is replaced).
    settings["log_function"] = finished_hook(
        patterns, resources.metrics, access_log=config.access_log
    )
    return tornado.web.Application(rules, **settings)


def make_metrics_app(metrics: Metrics) -> tornado.web.Application:
    """``GET /metrics`` alone, for ``--metrics_port``."""
    return tornado.web.Application(
        [(r"/metrics", MetricsHandler, {"metrics": metrics})], log_function=lambda _handler: None
    )
