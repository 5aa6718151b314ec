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
from handlers.flash import Flash, sign_in_url
from handlers.services import Services
from sessions import RedisSessionStore, SessionMixin, SessionUnavailable

log = logging.getLogger("app")
#: Session attribute ``served_by:<host:pid>``: how many requests that process served.
SERVED_BY_PREFIX = "served_by:"


class CurrentUser(SessionMixin, Services, Flash):
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
        """401 for JSON; a browser goes to the sign-in page, which brings it back here.

        When the request came with a session that has ended (signed out elsewhere,
        ended from "Your sessions", timed out), the sign-in page says so.
        """
        if self.get_cookie(self.session_cookie_name) is not None:
            self.flash("ended")  # kept across the 401 too: the page script follows it
        if self.wants_json:
            raise AppError(401, DEFAULT_MESSAGES[401])
        if self.request.method in ("GET", "HEAD"):
            self.redirect(sign_in_url(self.request.uri), status=302)
        else:  # a form POST: back to the page the form was on
            self.redirect(sign_in_url("/home"), status=303)
        raise tornado.web.Finish()

    async def save_session(self) -> None:
        """Commit the session's changes; a session ended meanwhile means signed out.

        A signed-in session that is written anyway also counts, in the same write, the
        request for the process serving it (one field per process).
        """
        session = self.session
        if session.modified and session.user_id is not None:
            session.incr(SERVED_BY_PREFIX + self.res.served_by)
        if not await self.commit_session():
            self.signed_out()

    def served_by_counts(self, attributes: Any = None) -> dict[str, int]:
        """``{"host:pid": requests}`` of a session's attributes (default: this one's)."""
        source = self.session if attributes is None else attributes
        return {
            name[len(SERVED_BY_PREFIX) :]: int(source[name])
            for name in source
            if name.startswith(SERVED_BY_PREFIX)
        }
