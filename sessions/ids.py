"""Session ids, the cookie value that locates a session, and Redis key names.

A session id is 32 bytes from :mod:`secrets` (256 bits), URL-safe base64 without
padding: 43 characters. The cookie carries a *locator*, ``"<user_id>:<sid>"`` for a
signed-in session and ``":<sid>"`` for an anonymous one, because a signed-in session's
key shares a Redis Cluster hash tag with its user's index (see ``sessions.store``).
An anonymous session's key has a hash tag of its own, ``{a:<sid>}``.
The cookie is signed, so a client can neither choose an id nor move a session to
another user; the locator is still validated before it becomes part of a key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

SID_BYTES = 32
_LOCATOR = re.compile(r"(?:(0|[1-9][0-9]{0,17}))?:([A-Za-z0-9_-]{43})")


def new_sid() -> str:
    """A fresh 256-bit session id from the CSPRNG."""
    return secrets.token_urlsafe(SID_BYTES)


def sid_digest(sid: str) -> str:
    """What logs show instead of an id: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(sid.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Locator:
    """Where a session lives: its id and, once signed in, its user."""

    sid: str
    user_id: int | None = None

    def encode(self) -> str:
        return f"{'' if self.user_id is None else self.user_id}:{self.sid}"

    @classmethod
    def parse(cls, value: str | bytes | None) -> Locator | None:
        """Return the locator in a (verified) cookie value, or None if malformed."""
        if value is None:
            return None
        if isinstance(value, bytes):
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                return None
        match = _LOCATOR.fullmatch(value)
        if match is None:
            return None
        user = match.group(1)
        return cls(sid=match.group(2), user_id=None if user is None else int(user))


@dataclass(frozen=True)
class KeySpace:
    """Names of every Redis key the session store uses, under one prefix."""

    prefix: str = ""

    def session(self, loc: Locator) -> str:
        if loc.user_id is None:
            return f"{self.prefix}sess:{{a:{loc.sid}}}"
        return f"{self.prefix}sess:{{u:{loc.user_id}}}:{loc.sid}"

    def user_index(self, user_id: int) -> str:
        return f"{self.prefix}sess:{{u:{user_id}}}:index"


class VerifiedCookies:
    """Cookie values whose signature was verified, with their signing time (one per store).

    Checking a signature (HMAC-SHA256 and parsing) is a measurable share of a small
    request; a browser sends the same value on every request. Only values that passed
    verification are kept, their age is still checked on every use, and the table is
    bounded (oldest entries go first).
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: dict[str, tuple[Locator, float]] = {}

    def get(self, value: str) -> tuple[Locator, float] | None:
        return self._entries.get(value)

    def remember(self, value: str, locator: Locator) -> None:
        try:  # v2 format: "2|1:<key version>|<n>:<timestamp>|..."
            signed_at = float(value.split("|", 3)[2].split(":", 1)[1])
        except (IndexError, ValueError):
            return
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]
        self._entries[value] = (locator, signed_at)
