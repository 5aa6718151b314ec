"""Request handlers, one module per area; ``routes()`` maps the URL paths to them."""

from __future__ import annotations

from tornado.routing import _RuleList

from handlers.api import HealthHandler, WhoAmIHandler
from handlers.auth import IndexHandler, LoginHandler, LogoutHandler, RegisterHandler
from handlers.home import HomeHandler
from handlers.statuses import AddStatusHandler, FetchStatusHandler


def routes() -> _RuleList:
    return [
        (r"/", IndexHandler),
        (r"/register", RegisterHandler),
        (r"/login", LoginHandler),
        (r"/logout", LogoutHandler),
        (r"/home", HomeHandler),
        (r"/addStatus", AddStatusHandler),
        (r"/fetchStatus", FetchStatusHandler),
        (r"/whoami", WhoAmIHandler),
        (r"/healthz", HealthHandler),
    ]
