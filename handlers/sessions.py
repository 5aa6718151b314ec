"""``/sessions``: the signed-in user's live sessions, and ending them.

* ``GET /sessions``: every live session of the user (device and browser, address,
  started, last active, which processes served it and how often, which one is this
  one). JSON: ``[{"id", "current", "created_at", "last_seen", "ip", "user_agent",
  "device", "served_by": {"host:pid": N}}, ...]``.
* ``POST /sessions/end`` with ``id``: end that session (404 for an unknown or foreign
  id); ending the current one signs this browser out.
* ``POST /sessions/end-others``: end every other session; ``{"ended": N}``.

A session id never leaves the server: ``id`` is an opaque handle, an HMAC of the id
under the newest cookie secret. The User-Agent is parsed (ua-parser) only here, when
the page is shown: it costs milliseconds, too much for every request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from ua_parser import parse as parse_user_agent

from handlers.base import BaseHandler
from handlers.errors import AppError
from sessions import SessionInfo
from storage.users import advance_sessions_valid_after

UNKNOWN_SESSION = "No such session: it may have ended already."


@functools.lru_cache(maxsize=512)
def describe_device(user_agent: str) -> str:
    """ "Firefox 140 on Windows", "Mobile Safari 18 on iOS (iPhone)", or "Unknown browser"."""
    if not user_agent:
        return "Unknown browser"
    parsed = parse_user_agent(user_agent)
    agent, system, device = parsed.user_agent, parsed.os, parsed.device
    text = "Unknown browser"
    if agent is not None and agent.family != "Other":
        text = agent.family + (f" {agent.major}" if agent.major else "")
    if system is not None and system.family != "Other":
        text += f" on {system.family}"
    if device is not None and device.family not in ("Other", "Spider"):
        text += f" ({device.family})"
    return text


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class SessionsPage(BaseHandler):
    """What the three routes share: the user's sessions, each with its handle."""

    def handle(self, sid: str) -> str:
        """The opaque id a page or client sees for a session id."""
        secrets = self.application.settings["cookie_secret"]
        if isinstance(secrets, dict):
            secrets = secrets[self.application.settings.get("key_version") or max(secrets)]
        digest = hmac.new(
            b"session-handle\0" + secrets.encode(), sid.encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    async def listed(self, user_id: int) -> list[tuple[str, SessionInfo]]:
        """(handle, session) of every live session, this one first, then most recent."""
        infos = await self.res.sessions.list_user_sessions(user_id)
        current = self.session.sid
        infos.sort(key=lambda info: (info.sid != current, -info.last_seen))
        return [(self.handle(info.sid), info) for info in infos]

    def as_json(self, handle: str, info: SessionInfo) -> dict[str, Any]:
        return {
            "id": handle,
            "current": info.sid == self.session.sid,
            "created_at": _iso(info.created_at),
            "last_seen": _iso(info.last_seen),
            "ip": info.ip,
            "user_agent": info.user_agent,
            "device": describe_device(info.user_agent),
            "served_by": self.served_by_counts(info.attributes),
        }


class SessionsHandler(SessionsPage):
    """``GET /sessions``: the list, as a page or JSON."""

    async def get(self) -> None:
        user = self.require_user()
        sessions = [self.as_json(h, info) for h, info in await self.listed(user["user_id"])]
        if self.wants_json:
            self.write_json(False, sessions)
            return
        self.render("sessions.html", user=user, sessions=sessions)


class EndSessionHandler(SessionsPage):
    """``POST /sessions/end`` with ``id``: end one session (this one signs out)."""

    def get(self) -> None:
        self.get_of_post_route("/sessions")

    async def post(self) -> None:
        user = self.require_user()
        wanted = (self.field("id") or "").encode()
        info = next(
            (
                info
                for handle, info in await self.listed(user["user_id"])
                if hmac.compare_digest(handle.encode(), wanted)
            ),
            None,
        )
        if info is None:
            raise AppError(404, UNKNOWN_SESSION)
        if info.sid == self.session.sid:
            await self.end_session()
            if not self.wants_json:
                self.flash("this_ended")
            await self.reply({"ended": 1}, redirect_to="/")
            return
        await self.res.sessions.end_user_session(user["user_id"], info.sid)
        if not self.wants_json:
            self.flash("session_ended")
        await self.reply({"ended": 1}, redirect_to="/sessions")


class EndOtherSessionsHandler(SessionsPage):
    """``POST /sessions/end-others``: end every session of the user but this one."""

    def get(self) -> None:
        self.get_of_post_route("/sessions")

    async def post(self) -> None:
        user = self.require_user()
        # Ended for good: a mark the ended sessions predate, kept where a Redis restore
        # cannot undo it; this session goes on under a new id that carries the new mark.
        mark = await advance_sessions_valid_after(self.res.db, user["user_id"])
        ended = await self.res.sessions.end_other_user_sessions(user["user_id"], self.session.sid)
        kept = {name: self.session[name] for name in self.session}
        await self.start_session(user["user_id"], valid_after=mark, **kept)
        if not self.wants_json:
            self.flash("others_ended")
        await self.reply({"ended": ended}, redirect_to="/sessions")
