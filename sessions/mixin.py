"""``SessionMixin``: gives a Tornado ``RequestHandler`` a Redis-backed session.

The cookie (default name ``sid``) holds a signed locator (see ``sessions.ids``):
Tornado's v2 signed-cookie format, verified with ``min_version=2`` and a maximum age no
shorter than the absolute timeout; several versioned keys may verify while the newest
signs. It is HttpOnly, SameSite=Lax, Secure when the request came over HTTPS (behind a
proxy, Tornado's ``xheaders`` decide), path ``/``, no Domain, and a browser-session
cookie (no Expires/Max-Age): the server-side timeouts decide how long it is good for.

A tampered, malformed, expired or unknown cookie gives a fresh anonymous session and is
cleared; its id is never reused. Nothing is written for a visitor until something is
put in the session. The handler must ``await commit_session()`` before it writes its
response, so that what the response shows is already stored.

The mixin expects ``self.application.settings["session_store"]`` to be a
:class:`sessions.store.RedisSessionStore`.
"""

from __future__ import annotations

import time
from typing import Any

from sessions.ids import Locator
from sessions.session import Session
from sessions.store import RedisSessionStore

CLOCK_SKEW_ALLOWANCE = 300  # seconds added to the absolute timeout for cookie age
COOKIE_NAME = "sid"
#: With ``secure_cookies``: a name browsers accept only Secure, Path=/, without Domain.
SECURE_COOKIE_NAME = "__Host-" + COOKIE_NAME


class SessionMixin:
    """Mix into ``tornado.web.RequestHandler`` (before it in the bases).

    Application settings read: ``session_store``; ``secure_cookies`` (True: the
    cookie is always Secure and named ``__Host-sid``, for a site served over HTTPS
    through a proxy that Tornado cannot see it through).
    """

    _session: Session | None = None

    # These come from RequestHandler.
    application: Any
    request: Any

    @property
    def session_cookie_name(self) -> str:
        secure = self.application.settings.get("secure_cookies")
        return SECURE_COOKIE_NAME if secure else COOKIE_NAME

    @property
    def session_store(self) -> RedisSessionStore:
        return self.application.settings["session_store"]  # type: ignore[no-any-return]

    @property
    def session(self) -> Session:
        """The session resolved by :meth:`load_session` (anonymous before that)."""
        if self._session is None:
            self._session = Session()
        return self._session

    def _cookie_locator(self) -> Locator | None:
        return self._locator_from(self.get_cookie(self.session_cookie_name))  # type: ignore[attr-defined]

    def _locator_from(self, value: str | None) -> Locator | None:
        """The locator a session cookie's value carries, if its signature holds."""
        if value is None:
            return None
        max_age = self.session_store.config.absolute_timeout + CLOCK_SKEW_ALLOWANCE
        verified = self.session_store.verified_cookies
        cached = verified.get(value)
        if cached is not None:
            known, signed_at = cached
            return known if time.time() - signed_at < max_age else None
        raw = self.get_signed_cookie(  # type: ignore[attr-defined]
            self.session_cookie_name, value, max_age_days=max_age / 86400, min_version=2
        )
        locator = Locator.parse(raw)
        if locator is not None:
            verified.remember(value, locator)
        return locator

    async def load_session(self) -> Session:
        """Resolve the request's session once (one Redis round trip when a cookie is sent).

        Raises :class:`sessions.store.SessionUnavailable` when Redis does not answer.
        """
        if self._session is not None:
            return self._session
        session: Session | None = None
        value = self.get_cookie(self.session_cookie_name)  # type: ignore[attr-defined]
        if value is not None:
            loc = self._locator_from(value)
            if loc is not None:
                session = await self.session_store.load(loc)
            if session is None:
                self._expire_session_cookie()
        self._session = session or Session()
        return self._session

    async def commit_session(self) -> bool:
        """Write the session's changes now (one round trip; none if nothing changed).

        Returns False when the session was ended meanwhile (logout elsewhere, revoked,
        expired): nothing was written, and the handler should treat the visitor as
        signed out.
        """
        session = self.session
        if not session.modified:
            return True
        was_stored = session.is_stored
        if not await self.session_store.save(session):
            self._expire_session_cookie()
            return False
        if not was_stored and session.locator is not None:
            self._set_session_cookie(session.locator)
        return True

    async def start_session(
        self, user_id: int, *, valid_after: int | None = None, **attributes: Any
    ) -> Session:
        """Sign in: end the current session (if any) and store a new one under a new id.

        The new session holds only ``attributes``; nothing crosses from the old one, so
        a session that was fixed on a victim, or another account's, gives nothing away.
        ``valid_after`` is the user's "sessions valid after" mark, kept in the session.
        """
        old = self._session
        old_loc = old.locator if old is not None else self._cookie_locator()
        if old_loc is not None:
            await self.session_store.destroy(old_loc, reason="rotated")
        session = Session()
        for name, value in attributes.items():
            session.set(name, value)
        await self.session_store.create(
            session,
            user_id=user_id,
            ip=self.request.remote_ip or "",
            user_agent=self.request.headers.get("User-Agent", ""),
            valid_after=valid_after,
        )
        self._session = session
        assert session.locator is not None
        self._set_session_cookie(session.locator)
        return session

    def session_locator(self) -> Locator | None:
        """Where the request's session lives (from the cookie when not loaded yet)."""
        return self._session.locator if self._session is not None else self._cookie_locator()

    async def end_session(self) -> None:
        """Sign out: expire the cookie, then delete the session in Redis.

        The cookie is expired even when Redis does not answer (the exception still
        propagates, so the caller can retry the deletion with :meth:`session_locator`).
        """
        loc = self.session_locator()
        self._expire_session_cookie()
        self._session = Session()
        if loc is not None:
            await self.session_store.destroy(loc, reason="logout")

    # ----- cookie ----------------------------------------------------------------
    def _cookie_options(self) -> dict[str, Any]:
        return {
            "path": "/",
            "httponly": True,
            "samesite": "Lax",
            "secure": bool(self.application.settings.get("secure_cookies"))
            or self.request.protocol == "https",
        }

    def _set_session_cookie(self, loc: Locator) -> None:
        self.set_signed_cookie(  # type: ignore[attr-defined]
            self.session_cookie_name, loc.encode(), expires_days=None, **self._cookie_options()
        )

    def _expire_session_cookie(self) -> None:
        self.clear_cookie(self.session_cookie_name, **self._cookie_options())  # type: ignore[attr-defined]
