"""Sessions in Redis hashes: the store, its key layout and every command it sends.

Key layout (``P`` is the configured prefix, ``<sid>`` a 43-character id):

``P sess:{a:<sid>}`` (hash)
    An anonymous session, created only once something is put in it. Its own hash tag
    spreads anonymous sessions over a Redis Cluster's slots.
``P sess:{u:<user_id>}:<sid>`` (hash)
    A signed-in session. The ``{u:<user_id>}`` hash tag puts it in the same Redis
    Cluster slot as its user's index, so the scripts below touch one slot only.
``P sess:{u:<user_id>}:index`` (sorted set)
    The user's live sessions: member = sid, score = expiry time (ms). Pruned of dead
    members whenever a script touches it, and given the lifetime of its longest-lived
    member, so it never grows with dead entries and disappears with the last session.

Hash fields: ``@c`` created (ms), ``@s`` last seen (ms), ``@ip`` client address and
``@ua`` user agent at sign-in (for "your sessions" lists), ``@va`` the user's
"sessions valid after" mark at sign-in (see ``RedisSessionStore.revalidate``); every
other field is one
session attribute, its value JSON (counters are plain integers, which are JSON too).
The hash's TTL is ``min(@c + absolute, @s + idle) - now``; the timeouts are also
checked in the LOAD script, so an expired session is refused even before Redis
evicts it. The key's name never changes (no RENAME: it is not Cluster-safe).

Commands, one round trip each (scripts run atomically with EVALSHA; see
``sessions.scripts`` for their bodies; every script's keys share one hash tag, so on
Redis Cluster each runs on one node):

* read a session:     EVALSHA LOAD (HGETALL; when ``@s`` is older than ``touch_after``
  also HSET @s, PEXPIRE, the index's ZADD/ZREMRANGEBYSCORE/ZRANGE/PEXPIRE and EXISTS;
  DEL + ZREM when timed out)
* write a change:     EVALSHA SAVE (EXISTS, then HSET / HDEL / HINCRBY of the changed
  fields only, then EXISTS again; nothing if the session was deleted meanwhile: no
  resurrection); it answers the counters' new values
* store a new one:    EVALSHA CREATE (HSET, PEXPIRE; index ZADD/ZREMRANGEBYSCORE/
  ZRANGE/PEXPIRE; over ``max_per_user``, ZCARD, then DEL + ZREM of the sessions
  due to expire first; EXISTS), then FENCE when sessions were ended
* end one:            EVALSHA DESTROY (DEL the hash, ZREM it from the user's index),
  then EVALSHA FENCE (nothing: its reply says every other connection's invalidation
  has been written; one more round trip, on sign-outs only)
* list a user's:      EVALSHA LIST (ZREMRANGEBYSCORE, ZRANGE, HGETALL per member)
* end all but one:    EVALSHA END_OTHERS (ZRANGE, DEL + ZREM per member), then FENCE

A script missing from Redis's script cache (after a restart or SCRIPT FLUSH) costs two
extra round trips, once: NOSCRIPT, then SCRIPT LOAD and EVALSHA again.

Transport: every command goes over one auto-pipelined connection per process and Redis
node (:mod:`sessions.transport` picks the single server, Cluster or Sentinel transport
from the URL), so concurrent requests share round trips and a command is never re-sent
after a failure that may have let it run (a counter cannot be incremented twice). There is no
MULTI/EXEC: on a shared connection other requests' commands would fall inside the
transaction; each multi-command step is one script instead, which is atomic anyway.

Cache: with a :class:`sessions.cache.SessionCache` (the default of ``from_url``), the
connection also sends, once when it connects, ``HELLO 3`` and ``CLIENT TRACKING ON
NOLOOP``; a read whose session is cached, within its timeouts and not due for a
``last_seen`` refresh, then sends nothing at all. Writes always go to Redis, and their
replies keep the entry current (SAVE's counters, applied with the delta to the entry
held), so a request that reads and changes its session costs one round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from sessions import scripts
from sessions.autopipeline import Script
from sessions.cache import DEFAULT_SIZE as DEFAULT_CACHE_SIZE
from sessions.cache import SessionCache
from sessions.events import SessionEvents
from sessions.ids import KeySpace, Locator, VerifiedCookies, new_sid, sid_digest
from sessions.session import F_AGENT, F_CREATED, F_IP, F_SEEN, F_VALID, Session, Snapshot
from sessions.transport import Transport, open_transport

log = logging.getLogger("sessions")
LOAD = Script(scripts.LOAD)
CREATE = Script(scripts.CREATE)
SAVE = Script(scripts.SAVE)
DESTROY = Script(scripts.DESTROY)
LIST = Script(scripts.LIST)
END_OTHERS = Script(scripts.END_OTHERS)
FENCE = Script(scripts.FENCE)
SCRIPT_NAMES = {
    s.sha: name
    for s, name in (
        (LOAD, "load"),
        (CREATE, "create"),
        (SAVE, "save"),
        (DESTROY, "destroy"),
        (LIST, "list"),
        (END_OTHERS, "end_others"),
        (FENCE, "fence"),
    )
}
MAX_AGENT_LENGTH = 256


class SessionUnavailable(Exception):
    """Redis could not be reached or did not answer in time."""


@dataclass(frozen=True)
class SessionConfig:
    """Timeouts (seconds) and naming. ``touch_after`` defaults to min(60, idle / 10)."""

    idle_timeout: float = 1800
    absolute_timeout: float = 28800
    touch_after: float | None = None
    prefix: str = ""
    max_per_user: int = 0  # live sessions per user; creating one more ends the oldest

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0 or self.absolute_timeout <= 0:
            raise ValueError("session timeouts must be positive")
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError("the key prefix must not contain { or } (Redis Cluster hash tags)")

    @property
    def touch_after_seconds(self) -> float:
        if self.touch_after is not None:
            return self.touch_after
        return min(60.0, self.idle_timeout / 10)


@dataclass(frozen=True)
class SessionInfo:
    """One live session of a user, as listed from the index."""

    sid: str
    created_at: float
    last_seen: float
    ip: str
    user_agent: str
    #: The session's attributes (JSON values), e.g. counters an application keeps.
    attributes: Mapping[str, Any] = field(default_factory=dict)


#: Asked, after Redis refreshed a signed-in session's ``last_seen``, whether the
#: session may go on (say, against a mark kept where a Redis restore cannot roll it
#: back). False ends it. Called at most once per ``touch_after`` per session.
Revalidator = Callable[[int, Session], Awaitable[bool]]


class RedisSessionStore:
    """Loads and writes :class:`Session` objects; knows nothing of HTTP."""

    #: See :data:`Revalidator`; None: no check.
    revalidate: Revalidator | None = None

    def __init__(
        self,
        redis: Transport,
        config: SessionConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        cache: SessionCache | None = None,
        events: SessionEvents | None = None,
    ) -> None:
        """Use ``redis``; pass ``cache`` only if ``redis`` delivers its invalidations
        (``from_url`` wires both). ``events`` hears what happens (:mod:`sessions.events`)."""
        self.redis = redis
        self.config = config or SessionConfig()
        self.keys = KeySpace(self.config.prefix)
        self.clock = clock
        self.cache = cache
        self.events = events or SessionEvents()
        self.verified_cookies = VerifiedCookies()  # for SessionMixin: signatures checked
        # For the cache's freshness check, in the milliseconds the snapshots hold.
        cfg = self.config
        self._absolute_ms = cfg.absolute_timeout * 1000
        self._fresh_ms = min(cfg.idle_timeout, cfg.touch_after_seconds) * 1000

    @classmethod
    def from_url(
        cls,
        url: str,
        config: SessionConfig | None = None,
        *,
        timeout: float = 0.5,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
        events: SessionEvents | None = None,
    ) -> RedisSessionStore:
        """A store on its own connections to the Redis that ``url`` names (see
        :func:`sessions.transport.open_transport`); ``cache_size=0``: no cache."""
        config = config or SessionConfig()
        cache = SessionCache(cache_size) if cache_size > 0 else None
        redis = open_transport(
            url,
            timeout=timeout,
            tracking_prefixes=[f"{config.prefix}sess:"] if cache is not None else (),
            on_invalidate=cache.invalidate if cache is not None else None,
        )
        return cls(redis, config, clock=clock, cache=cache, events=events)

    async def _run(
        self,
        script: Script,
        keys: list[str],
        args: list[Any],
        on_reply: Callable[[Any], None] | None = None,
    ) -> Any:
        started = time.perf_counter()
        try:
            reply = await self.redis.evalsha(script, keys, args, on_reply)
        except RedisError as exc:
            self.events.command(
                SCRIPT_NAMES.get(script.sha, "other"), time.perf_counter() - started, exc
            )
            raise SessionUnavailable(str(exc) or type(exc).__name__) from exc
        self.events.command(
            SCRIPT_NAMES.get(script.sha, "other"), time.perf_counter() - started, None
        )
        return reply

    async def close(self) -> None:
        await self.redis.close()

    # ----- helpers ---------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _keys_for(self, loc: Locator) -> list[str]:
        keys = [self.keys.session(loc)]
        if loc.user_id is not None:
            keys.append(self.keys.user_index(loc.user_id))
        return keys

    # ----- one session -----------------------------------------------------------
    async def load(self, loc: Locator) -> Session | None:
        """The stored session, or None when it is unknown, ended or timed out."""
        cfg = self.config
        key = self.keys.session(loc)
        now = self._now_ms()
        cache = self.cache
        if cache is not None:
            # Pushes already sent by Redis are handled first, even when the event loop
            # has not come round to them: a sign-out elsewhere is never served.
            snapshot = cache.get(key) if self.redis.read_pending() else None
            if snapshot is not None and self._fresh(snapshot, now):
                cache.hits += 1
                self.events.cache_lookup(True)
                return Session.view(loc, snapshot)
            cache.misses += 1
            self.events.cache_lookup(False)
        loaded: Snapshot | None = None

        def remember(reply: Any) -> None:
            nonlocal loaded
            loaded = Snapshot(_pairs(reply)) if reply else None
            if cache is not None:
                if loaded is None:
                    cache.drop(key)
                else:
                    cache.put(key, loaded)

        await self._run(
            LOAD,
            self._keys_for(loc),
            [
                now,
                int(cfg.idle_timeout * 1000),
                int(cfg.absolute_timeout * 1000),
                int(cfg.touch_after_seconds * 1000),
                loc.sid,
            ],
            remember,
        )
        if loaded is None:
            self.events.ended("expired", sid_digest(loc.sid), loc.user_id)
            return None
        session = Session.view(loc, loaded)
        # Touched now: last_seen rewritten to now (not merely created this millisecond).
        touched = loaded.seen_ms == now != loaded.created_ms
        check, user_id = self.revalidate, loc.user_id
        if touched and check and user_id is not None and not await check(user_id, session):
            await self.destroy(loc, reason="revoked")
            return None
        return session

    def _fresh(self, snapshot: Snapshot, now: int) -> bool:
        """May a cached entry be used as it is (no timeout, no refresh due)?"""
        created, seen = snapshot.created_ms, snapshot.seen_ms
        if created is None or seen is None:
            return False
        return now < created + self._absolute_ms and now - seen < self._fresh_ms

    async def save(self, session: Session) -> bool:
        """Write the session's changes; store it first if it is new.

        Returns False (and writes nothing) when a stored session was deleted meanwhile.
        """
        if not session.modified:
            return True
        if not session.is_stored:
            await self.create(session)
            return True
        assert session.locator is not None
        sets, deletes, incrs = session.pending()
        args: list[Any] = [len(sets), len(deletes), len(incrs)]
        for name, value in sets.items():
            args += [name, value]
        args += sorted(deletes)
        for name, amount in incrs.items():
            args += [name, amount]
        key = self.keys.session(session.locator)
        cache = self.cache

        def refresh(reply: Any) -> None:
            if cache is None:
                return
            if reply is None:
                cache.drop(key)
                return
            # The entry held now is the session as Redis had it right before this
            # write: any change by another connection since the read it came from has
            # been pushed, and evicted it, before this reply. None: the next read loads.
            held = cache.get(key)
            if held is not None:
                cache.put(
                    key, held.with_changes(sets, deletes, dict(zip(incrs, reply, strict=True)))
                )

        counters = await self._run(SAVE, [key], args, refresh)
        if counters is None:
            session.ended = True
            loc = session.locator
            self.events.ended("ended_elsewhere", sid_digest(loc.sid), loc.user_id)
            return False
        session.mark_written(dict(zip(incrs, counters, strict=True)))
        return True

    async def create(
        self,
        session: Session,
        *,
        user_id: int | None = None,
        ip: str = "",
        user_agent: str = "",
        valid_after: int | None = None,
    ) -> Session:
        """Store ``session`` under a fresh id (with its pending attributes).

        ``valid_after``: the user's "sessions valid after" mark, kept in the session.
        A signed-in user already at ``max_per_user`` live sessions loses the oldest.
        """
        cfg = self.config
        now = self._now_ms()
        loc = Locator(sid=new_sid(), user_id=user_id)
        meta = {F_CREATED: str(now), F_SEEN: str(now)}
        if valid_after is not None:
            meta[F_VALID] = str(valid_after)
        if ip:
            meta[F_IP] = ip
        if user_agent:
            meta[F_AGENT] = user_agent[:MAX_AGENT_LENGTH]
        sets, _deletes, incrs = session.pending()
        fields: dict[str, str] = {**meta, **sets}
        for name in incrs:
            fields[name] = str(session.get(name))
        args: list[Any] = [
            now,
            int(cfg.idle_timeout * 1000),
            int(cfg.absolute_timeout * 1000),
            loc.sid,
            cfg.max_per_user,
            "" if user_id is None else self._user_key_prefix(user_id),
        ]
        for name, value in fields.items():
            args += [name, value]
        key = self.keys.session(loc)
        cache = self.cache

        def remember(reply: Any) -> None:
            if cache is not None:
                cache.put(key, Snapshot(fields))
                for sid in reply or ():
                    cache.drop(args[5] + _text(sid))

        ended = await self._run(CREATE, self._keys_for(loc), args, remember)
        if ended:
            await self._fence(key)
            log.info("sessions ended for user=%s: %d over the cap", user_id, len(ended))
            for sid in ended:
                self.events.ended("revoked", sid_digest(_text(sid)), user_id)
        session.adopt(loc, meta)
        session.mark_written()
        log.info("session created %s user=%s", sid_digest(loc.sid), user_id)
        self.events.created(sid_digest(loc.sid), user_id)
        return session

    async def destroy(self, loc: Locator, reason: str = "logout") -> None:
        """Delete a session (and its index entry): later reads and writes find nothing.

        ``reason`` is reported to ``events`` (see :mod:`sessions.events`).
        """
        key = self.keys.session(loc)
        cache = self.cache
        if cache is not None:
            cache.drop(key)  # at once; and again when Redis confirms, in order
        await self._run(
            DESTROY,
            self._keys_for(loc),
            [loc.sid],
            None if cache is None else lambda _reply: cache.drop(key),
        )
        await self._fence(key)
        log.info("session ended %s user=%s", sid_digest(loc.sid), loc.user_id)
        self.events.ended(reason, sid_digest(loc.sid), loc.user_id)

    # ----- a user's sessions -----------------------------------------------------
    async def list_user_sessions(self, user_id: int) -> list[SessionInfo]:
        """The user's live sessions with their metadata, oldest expiry first."""
        rows = await self._run(
            LIST, [self.keys.user_index(user_id)], [self._now_ms(), self._user_key_prefix(user_id)]
        )
        listed = []
        for sid, flat in rows:
            fields = _pairs(flat)
            listed.append(
                SessionInfo(
                    sid=_text(sid),
                    created_at=int(fields.get(F_CREATED, 0)) / 1000,
                    last_seen=int(fields.get(F_SEEN, 0)) / 1000,
                    ip=fields.get(F_IP, ""),
                    user_agent=fields.get(F_AGENT, ""),
                    attributes=_attributes(fields),
                )
            )
        return listed

    async def end_user_session(self, user_id: int, sid: str) -> None:
        """End one of the user's sessions (a no-op when it is already gone)."""
        await self.destroy(Locator(sid=sid, user_id=user_id), reason="revoked")

    async def end_other_user_sessions(self, user_id: int, keep_sid: str | None) -> int:
        """End every session of the user except ``keep_sid``; return how many ended."""
        prefix = self._user_key_prefix(user_id)
        cache = self.cache

        def forget(reply: Any) -> None:
            if cache is not None:
                for sid in reply:
                    cache.drop(prefix + _text(sid))

        ended = await self._run(
            END_OTHERS, [self.keys.user_index(user_id)], [prefix, keep_sid or ""], forget
        )
        if ended:
            await self._fence(self.keys.user_index(user_id))
        for sid in ended:
            self.events.ended("revoked", sid_digest(_text(sid)), user_id)
        log.info(
            "sessions ended for user=%s: %d (kept %s)",
            user_id,
            len(ended),
            sid_digest(keep_sid) if keep_sid else "none",
        )
        return len(ended)

    async def _fence(self, key: str) -> None:
        """Return once Redis has written the invalidations of the sign-out just confirmed
        (on ``key``'s node) to every other connection: see ``FENCE`` in sessions.scripts.

        One more round trip, on sign-outs only. Without it, another process's next
        lookup could come before Redis's write of its push (the two are microseconds
        apart, unless Redis is descheduled between them). The sign-out itself is done;
        a failure here only loses that ordering, and is logged.
        """
        try:
            await self._run(FENCE, [key], [])
        except SessionUnavailable as exc:
            log.warning("no fence after a sign-out: %s", exc)

    def _user_key_prefix(self, user_id: int) -> str:
        return self.keys.user_index(user_id)[: -len("index")]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _attributes(fields: dict[str, str]) -> dict[str, Any]:
    """A hash's attributes (every field but the metadata), JSON-decoded."""
    session = Session(None, fields)
    return {name: session[name] for name in session}


def _pairs(flat: list[Any]) -> dict[str, str]:
    """A flat [field, value, ...] reply as a dict of strings."""
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
