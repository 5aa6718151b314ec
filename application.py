"""Build the Tornado application: routes, settings, templates and static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from handlers import routes
from handlers.not_found import NotFoundHandler
from handlers.services import SETTING as SERVICES_SETTING
from handlers.static import StaticHandler
from resources import Resources
from settings import AppConfig

ROOT = Path(__file__).resolve().parent


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Access logging switched off (``--access_log=false``); errors are still logged."""


def make_app(config: AppConfig, resources: Resources) -> tornado.web.Application:
    settings: dict[str, Any] = {
        "template_path": str(ROOT / "templates"),
        "static_path": str(ROOT / "static"),
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
    }
    if not config.access_log:
        settings["log_function"] = _no_access_log
    return tornado.web.Application(routes(), **settings)
