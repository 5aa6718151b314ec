"""A process-local cache of hot sessions, kept exact by Redis's invalidation messages.

A session read (``/whoami``, most page views) then costs no Redis round trip at all,
and a request that changes its session (``/home``) costs one, the write. How it stays
exact:

* The store's connection turns on ``CLIENT TRACKING ON NOLOOP`` (per-key mode): Redis
  remembers each key this connection reads and pushes its name when another connection
  changes, deletes or expires it, on the same connection and in order with the replies
  (a change executed before one of our commands arrives before that command's reply).
* Entries are written only from replies, at the moment each reply is parsed, and
  evicted by pushes at the moment each push is parsed (see ``sessions.autopipeline``).
  A change made by another process before our read executed arrives before our read's
  reply; one made after, after it. So no entry outlives a change it has not seen.
* This process's own writes refresh the entry from their replies: SAVE answers with
  the counters' new values, and the entry held at that moment gets the write's delta.
  That entry is the session as Redis had it right before the write: a change by
  another connection since the read the entry came from was pushed, and evicted it,
  before the write's reply (no entry held: nothing is put). NOLOOP means
  no push comes back for them (in per-key mode that holds for writes made inside
  scripts too; broadcast mode sends them back, which is why it is not used). A write
  ends Redis's tracking of the key for everyone, the writer included, so every script
  that writes a session reads it again last: Redis then keeps tracking it for us, and
  the next change by anyone else is pushed.
* Before every lookup, the store has the connection handle whatever Redis has already
  sent (``AutoPipeline.read_pending``): a busy event loop may run a request's handler
  before it reads a push that arrived earlier, and a hit must never be served while a
  push may be unread. When that cannot be vouched for (bytes waiting on a TLS
  connection, a message half arrived), the lookup goes to Redis.
* When the connection drops, invalidations may have been missed: everything is
  forgotten (``invalidate(None)``), and the next read of each session goes to Redis.
* A cached entry is still checked against the idle and absolute timeouts on every
  use, and is not used once its ``last_seen`` needs refreshing (the store then reads
  through Redis, which refreshes it).

Entries are :class:`sessions.session.Snapshot` objects: decoded once, shared by every
request that reads them, replaced (never changed) when the session changes.

The bound: a sign-out elsewhere is refused here as soon as Redis has written its push
to this connection. Redis queues the push while it executes the sign-out and writes it
in the same pass of its event loop as the reply to the sign-out: the window is the
time between two of Redis's writes, not this process's event loop. Entries are bounded
in number; the oldest go first.
"""

from __future__ import annotations

from sessions.session import Snapshot

DEFAULT_SIZE = 10_000  # sessions cached per process unless told otherwise


class SessionCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: dict[str, Snapshot] = {}
        self.hits = 0
        self.misses = 0
        self.flushes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Snapshot | None:
        return self._entries.get(key)

    def put(self, key: str, snapshot: Snapshot) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[key] = snapshot

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
            entries.pop(key.decode(), None)
