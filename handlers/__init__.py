"""Request handlers, one module per area; :func:`routes` maps the URL paths to them.

Adding a page or endpoint:

* declare its route here, in :func:`routes` (the only place routes are listed);
* derive the handler from :class:`handlers.base.BaseHandler`. By the time ``get`` or
  ``post`` runs, the session is loaded: ``self.current_user`` is the signed-in user
  or None, ``self.require_user()`` returns it or stops with 401 / a redirect, and
  ``self.session`` is the session itself (commit changes with ``await
  self.save_session()``, or let ``await self.reply(...)`` do it);
* reach services only through ``self.res`` (:class:`resources.Resources`:
  ``res.db``, ``res.sessions``, ``res.redis``, ``res.passwords``, ``res.throttle``);
* read input with ``self.field(name)`` (form or JSON body alike), answer with
  ``await self.reply(...)`` or ``self.write_json(...)``, fail with ``raise
  AppError(status, message)`` (:mod:`handlers.errors`): one shape for pages and JSON.

``BaseHandler`` (see :mod:`handlers.base`) lists which module does which job.
"""

from __future__ import annotations

from tornado.routing import _RuleList

from handlers.api import HealthHandler, WhoAmIHandler
from handlers.auth import IndexHandler, LoginHandler, LogoutHandler, RegisterHandler
from handlers.home import HomeHandler
from handlers.metrics import MetricsHandler
from handlers.password import PasswordHandler
from handlers.sessions import EndOtherSessionsHandler, EndSessionHandler, SessionsHandler
from handlers.static import root_files
from handlers.statuses import AddStatusHandler, FetchStatusHandler


def routes(*, metrics: bool = False) -> _RuleList:
    """Every route; ``metrics``: also ``GET /metrics`` (when not on its own port)."""
    rules: _RuleList = [
        (r"/", IndexHandler),
        (r"/register", RegisterHandler),
        (r"/login", LoginHandler),
        (r"/logout", LogoutHandler),
        (r"/password", PasswordHandler),
        (r"/home", HomeHandler),
        (r"/addStatus", AddStatusHandler),
        (r"/fetchStatus", FetchStatusHandler),
        (r"/sessions", SessionsHandler),
        (r"/sessions/end", EndSessionHandler),
        (r"/sessions/end-others", EndOtherSessionsHandler),
        (r"/whoami", WhoAmIHandler),
        (r"/healthz", HealthHandler),
        *root_files(),
    ]
    if metrics:
        rules.append((r"/metrics", MetricsHandler))
    return rules
