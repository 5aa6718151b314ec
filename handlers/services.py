"""How a handler reaches the worker's services: ``self.res``, one way, nothing else.

The application keeps the worker's :class:`resources.Resources` (Redis, the session
store, the MariaDB pool, the password hasher, the throttle) in its settings under
``SETTING``; every handler reads it through :func:`services` (``self.res`` on
:class:`Services`), never through a setting of its own.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from resources import Resources

SETTING = "resources"


def services(application: tornado.web.Application) -> Resources:
    """The worker's services the application was built with."""
    return application.settings[SETTING]  # type: ignore[no-any-return]


class Services(tornado.web.RequestHandler):
    """Mixin: ``self.res``, the worker's services."""

    application: Any

    @property
    def res(self) -> Resources:
        return services(self.application)
