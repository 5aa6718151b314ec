"""The signed-in user, from the session alone (no database query).

``resolve_user`` loads the session (one Redis round trip, none on a cache hit) and sets
``current_user`` to ``{"user_id", "user_name"}`` or None. ``require_user`` stops a
signed-out visitor: 401 for JSON, a redirect to the sign-in page for a browser.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import tornado.web

from handlers.errors import DEFAULT_MESSAGES, AppError
from handlers.services import Services
from sessions import RedisSessionStore, SessionMixin, SessionUnavailable

log = logging.getLogger("app")


class CurrentUser(SessionMixin, Services):
    """Mixin: the session and the user it belongs to."""

    #: When Redis is down: True renders as signed out, False answers 503.
    session_optional = False
    wants_json: bool  # from handlers.negotiation

    @property
    def session_store(self) -> RedisSessionStore:
        return self.res.sessions

    async def resolve_user(self) -> dict[str, Any] | None:
        """Load the session and set ``current_user`` from it (no database query)."""
        try:
            session = await self.load_session()
        except SessionUnavailable:
            if not self.session_optional:
                raise
            log.warning(
                "Redis unavailable: %s %s served as signed out",
                self.request.method,
                self.request.path,
            )
            session = self.session
        user = None
        if session.user_id is not None:
            user = {"user_id": session.user_id, "user_name": session.get("user_name", "")}
        self.current_user = user
        return user

    def require_user(self) -> dict[str, Any]:
        """The signed-in user, or stop here: 401 for JSON, back to the sign-in page."""
        user: dict[str, Any] | None = self.current_user
        if user is None:
            self.signed_out()
        return user

    def signed_out(self) -> NoReturn:
        if self.wants_json:
            raise AppError(401, DEFAULT_MESSAGES[401])
        self.redirect("/", status=303 if self.request.method == "POST" else 302)
        raise tornado.web.Finish()

    async def save_session(self) -> None:
        """Commit the session's changes; a session ended meanwhile means signed out."""
        if not await self.commit_session():
            self.signed_out()
