"""What the session store reports as it works: the hook for an application's metrics and logs.

The store calls one :class:`SessionEvents` object; this base class ignores every call,
so the package depends on no metrics or logging library. An application subclasses it
and passes an instance as ``RedisSessionStore(..., events=...)`` (or ``from_url``).
The calls are synchronous and some are on the hot path (a cache lookup per request):
keep them cheap, and never raise from them.

Why a session ended (``reason``), each counted where this process sees it:

``logout``
    the visitor signed out;
``rotated``
    a sign-in replaced the visitor's previous session (anonymous or not) with a new id;
``revoked``
    the user ended it from another session (``end_user_session``,
    ``end_other_user_sessions``), a new sign-in beyond ``max_per_user`` ended it, or
    the store's ``revalidate`` hook refused it at a refresh;
``expired``
    a request brought the cookie of a session past its idle or absolute timeout:
    LOAD found it timed out, or Redis had already deleted the key at its TTL (which is
    also what a request sees after a revocation elsewhere);
``ended_elsewhere``
    a write found its session deleted meanwhile by a concurrent sign-out or revocation
    in another request: nothing was written (no resurrection).
"""

from __future__ import annotations

ENDED_REASONS = ("logout", "rotated", "revoked", "expired", "ended_elsewhere")


class SessionEvents:
    """Callbacks of :class:`sessions.store.RedisSessionStore`; all do nothing here."""

    def created(self, digest: str, user_id: int | None) -> None:
        """A session was stored under a new id (``digest``: :func:`sessions.ids.sid_digest`)."""

    def ended(self, reason: str, digest: str, user_id: int | None) -> None:
        """A session ended, for ``reason`` (one of :data:`ENDED_REASONS`)."""

    def cache_lookup(self, hit: bool) -> None:
        """A session read was answered from the process's cache (``hit``) or not."""

    def command(self, script: str, seconds: float, error: Exception | None) -> None:
        """One script ran (``load``, ``save``, ...), in ``seconds``; ``error`` if it failed."""
