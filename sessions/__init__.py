"""Server-side sessions for Tornado, stored in Redis hashes.

A reusable package: it knows nothing of this application's routes. The parts:

* :mod:`sessions.session` - the per-request session object that records changes;
* :mod:`sessions.store` - the Redis store (key layout and every command: see there);
* :mod:`sessions.scripts` - the Lua scripts the store runs;
* :mod:`sessions.mixin` - ``SessionMixin`` for ``tornado.web.RequestHandler``;
* :mod:`sessions.ids` - ids, cookie locators, key names;
* :mod:`sessions.events` - the hook an application's metrics and logs plug into;
* :mod:`sessions.transport` - the connection to Redis chosen by the URL (one server,
  Redis Cluster or Redis Sentinel), over :mod:`sessions.autopipeline`;
* :mod:`sessions.cache` - the process-local session cache kept exact by Redis.

``docs/SESSIONS.md`` is the guide.
"""

from sessions.events import SessionEvents
from sessions.ids import Locator
from sessions.mixin import SessionMixin
from sessions.session import Session
from sessions.store import RedisSessionStore, SessionConfig, SessionInfo, SessionUnavailable

__all__ = [
    "Locator",
    "RedisSessionStore",
    "Session",
    "SessionConfig",
    "SessionEvents",
    "SessionInfo",
    "SessionMixin",
    "SessionUnavailable",
]
