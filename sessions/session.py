"""The session object a request works with: loaded fields plus a record of changes.

Attributes are JSON values under names that do not start with ``@`` (those are the
store's metadata fields). Reads come from what was loaded; ``set``, ``delete`` and
``incr`` are recorded and written by the store as a delta, so two requests of one
session that change different attributes never overwrite each other, and counters
changed with ``incr`` are exact under any concurrency.

What was loaded is a :class:`Snapshot`: the stored hash decoded once (JSON values,
the two timestamps as integers), never changed after it is made. The session cache
keeps snapshots, and a :class:`Session` made from one (``Session.view``) is a
copy-on-write view of it: reading costs no decoding and no copy; the first change
copies the values into the session's own dict, and a container value (list, dict) is
copied before the request is given it, so nothing a request does reaches the cache.
"""

from __future__ import annotations

import builtins
import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sessions.ids import Locator

META_PREFIX = "@"
F_CREATED = "@c"
F_SEEN = "@s"
F_IP = "@ip"
F_AGENT = "@ua"
F_VALID = "@va"  # the user's "sessions valid after" mark when this session began


def _check_name(name: str) -> None:
    if not name or name.startswith(META_PREFIX):
        raise KeyError(f"invalid session attribute name: {name!r}")


class Snapshot:
    """A stored session's hash, decoded once; shared, and never changed in place."""

    __slots__ = ("created_ms", "data", "meta", "seen_ms")

    def __init__(self, fields: Mapping[str, str]) -> None:
        meta: dict[str, str] = {}
        data: dict[str, Any] = {}
        for name, raw in fields.items():
            if name.startswith(META_PREFIX):
                meta[name] = raw
                continue
            try:
                data[name] = json.loads(raw)
            except ValueError:
                continue  # a value this code did not write: ignore it, never crash
        self.meta = meta
        self.data = data
        try:
            self.created_ms: int | None = int(meta[F_CREATED])
            self.seen_ms: int | None = int(meta[F_SEEN])
        except (KeyError, ValueError):
            self.created_ms = self.seen_ms = None

    def with_changes(
        self,
        sets: Mapping[str, str],
        deletes: Iterable[str],
        counters: Mapping[str, int],
    ) -> Snapshot:
        """A new snapshot: this one after a write of ``sets`` (JSON text), ``deletes``
        and ``counters`` (their new values, as Redis answered them)."""
        data = dict(self.data)
        for name, raw in sets.items():
            try:
                data[name] = json.loads(raw)
            except ValueError:
                data.pop(name, None)
        for name in deletes:
            data.pop(name, None)
        data.update(counters)
        changed = Snapshot.__new__(Snapshot)
        changed.meta = self.meta
        changed.data = data
        changed.created_ms = self.created_ms
        changed.seen_ms = self.seen_ms
        return changed


EMPTY = Snapshot({})
_IMMUTABLE = (str, int, float, bool, type(None))


class Session:
    """One visitor's session for the length of one request."""

    __slots__ = ("_base", "_data", "_deletes", "_incrs", "_meta", "_sets", "ended", "locator")

    def __init__(
        self,
        locator: Locator | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self._start(locator, Snapshot(fields) if fields else EMPTY)

    @classmethod
    def view(cls, locator: Locator, snapshot: Snapshot) -> Session:
        """The session ``locator`` as ``snapshot`` holds it (nothing decoded or copied)."""
        session = cls.__new__(cls)
        session._start(locator, snapshot)
        return session

    def _start(self, locator: Locator | None, snapshot: Snapshot) -> None:
        self.locator = locator
        self._meta = snapshot.meta  # shared: replaced, never changed
        self._base = snapshot.data  # shared: never changed
        self._data: dict[str, Any] | None = None  # this request's copy, from the first change
        self._sets: dict[str, str] = {}
        self._deletes: builtins.set[str] = builtins.set()
        self._incrs: dict[str, int] = {}
        self.ended = False

    def _own(self) -> dict[str, Any]:
        """The values as this request's own dict (copied from the snapshot once)."""
        data = self._data
        if data is None:
            data = self._data = dict(self._base)
        return data

    def _value(self, name: str) -> Any:
        """A value, raising KeyError; a container from the snapshot is copied first."""
        value = (self._base if self._data is None else self._data)[name]
        if isinstance(value, _IMMUTABLE) or self._base.get(name) is not value:
            return value
        value = self._own()[name] = copy.deepcopy(value)
        return value

    # ----- identity and metadata -------------------------------------------------
    @property
    def is_stored(self) -> bool:
        """True when this session exists in Redis (it has an id)."""
        return self.locator is not None

    @property
    def sid(self) -> str | None:
        return None if self.locator is None else self.locator.sid

    @property
    def user_id(self) -> int | None:
        return None if self.locator is None else self.locator.user_id

    @property
    def created_at(self) -> float | None:
        raw = self._meta.get(F_CREATED)
        return None if raw is None else int(raw) / 1000

    @property
    def valid_after(self) -> int | None:
        """The user's "sessions valid after" mark this session was issued under."""
        raw = self._meta.get(F_VALID)
        return None if raw is None else int(raw)

    # ----- attributes ------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self._value(name)
        except KeyError:
            return default

    def __getitem__(self, name: str) -> Any:
        return self._value(name)

    def __contains__(self, name: object) -> bool:
        return name in (self._base if self._data is None else self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._base if self._data is None else self._data)

    def __len__(self) -> int:
        return len(self._base if self._data is None else self._data)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.delete(name)

    def set(self, name: str, value: Any) -> None:
        _check_name(name)
        encoded = _ENCODER.encode(value)
        self._own()[name] = json.loads(encoded)
        self._sets[name] = encoded
        self._deletes.discard(name)
        self._incrs.pop(name, None)

    def delete(self, name: str) -> None:
        _check_name(name)
        self._own().pop(name, None)
        self._sets.pop(name, None)
        self._incrs.pop(name, None)
        self._deletes.add(name)

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to an integer attribute atomically in Redis (HINCRBY)."""
        _check_name(name)
        data = self._own()
        if name in self._sets:  # set and incremented in one request: fold into the set
            self.set(name, int(data[name]) + amount)
            return
        self._incrs[name] = self._incrs.get(name, 0) + amount
        self._deletes.discard(name)
        data[name] = int(data.get(name) or 0) + amount

    # ----- the delta the store writes ---------------------------------------------
    @property
    def modified(self) -> bool:
        return bool(self._sets or self._deletes or self._incrs)

    def pending(self) -> tuple[dict[str, str], builtins.set[str], dict[str, int]]:
        """(fields to HSET, fields to HDEL, counters to HINCRBY)."""
        return dict(self._sets), builtins.set(self._deletes), dict(self._incrs)

    def mark_written(self, counters: Mapping[str, int] | None = None) -> None:
        """Forget the recorded changes; take Redis's values for the counters."""
        if counters:
            self._own().update(counters)
        self._sets.clear()
        self._deletes.clear()
        self._incrs.clear()

    def adopt(self, locator: Locator, meta: Mapping[str, str]) -> None:
        """Become the newly stored session ``locator`` (after create or rotation)."""
        self.locator = locator
        self._meta = dict(meta)


#: One encoder for every value written (not one built per call by ``json.dumps``).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
