"""A process-local cache of hot sessions, kept exact by Redis's invalidation messages.

A session read (``/whoami``, most page views) then costs no Redis round trip at all.
How it stays exact:

* The store's connection subscribes to ``CLIENT TRACKING ON BCAST PREFIX <P>sess:
  NOLOOP``: Redis pushes the name of every session key another connection changes,
  deletes or lets expire, on the same connection and in order with the replies.
* Entries are written only from replies, at the moment each reply is parsed, and
  evicted by pushes at the moment each push is parsed (see ``sessions.autopipeline``).
  A change made by another process before our read executed arrives before our read's
  reply; one made after, after it. So no entry outlives a change it has not seen.
* This process's own writes update or drop the entry from their replies, by the same
  in-order rule (NOLOOP asks Redis not to push them back; Redis 7.0 pushes writes made
  inside scripts back anyway, which only costs one more read of that session).
* When the connection drops, invalidations may have been missed: everything is
  forgotten (``invalidate(None)``), and the next read of each session goes to Redis.
* A cached entry is still checked against the idle and absolute timeouts on every
  use, and is not used once its ``last_seen`` needs refreshing (the store then reads
  through Redis, which refreshes it).

* Before every lookup, the store has the connection handle whatever Redis has already
  sent (``AutoPipeline.read_pending``): a busy event loop may run a request's handler
  before it reads a push that arrived earlier, and a hit must never be served while a
  push may be unread. When that cannot be vouched for (bytes waiting on a TLS
  connection, a message half arrived), the lookup goes to Redis.

The bound: a sign-out elsewhere is refused here as soon as Redis has written its push
to this connection. Redis writes the push in the same pass of its event loop as the
reply to the sign-out (before that reply, unless this connection already had a reply
queued in that pass): the window is the time between two of Redis's writes, not this
process's event loop. Entries are bounded in number; the oldest go first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class SessionCache:
    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._entries: dict[str, dict[str, str]] = {}
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.flushes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict[str, str] | None:
        return self._entries.get(key)

    def put(self, key: str, fields: dict[str, str]) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[key] = fields

    def update(
        self, key: str, sets: Mapping[str, str], deletes: Iterable[str], counters: Mapping[str, int]
    ) -> None:
        """Apply this process's own change to the entry, if it is cached."""
        fields = self._entries.get(key)
        if fields is None:
            return
        fields.update(sets)
        for name in deletes:
            fields.pop(name, None)
        for name, value in counters.items():
            fields[name] = str(value)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def invalidate(self, keys: list[bytes] | None) -> None:
        """Redis says these keys changed; None means forget everything."""
        if keys is None:
            self.flushes += 1
            self._entries.clear()
            return
        entries = self._entries
        for key in keys:
            if entries.pop(key.decode(), None) is not None:
                self.invalidations += 1
