"""The session object a request works with: loaded fields plus a record of changes.

Attributes are JSON values under names that do not start with ``@`` (those are the
store's metadata fields). Reads come from what was loaded; ``set``, ``delete`` and
``incr`` are recorded and written by the store as a delta, so two requests of one
session that change different attributes never overwrite each other, and counters
changed with ``incr`` are exact under any concurrency.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sessions.ids import Locator

META_PREFIX = "@"
F_CREATED = "@c"
F_SEEN = "@s"
F_USER = "@u"
F_IP = "@ip"
F_AGENT = "@ua"
F_VALID = "@va"  # the user's "sessions valid after" mark when this session began


def _check_name(name: str) -> None:
    if not name or name.startswith(META_PREFIX):
        raise KeyError(f"invalid session attribute name: {name!r}")


class Session:
    """One visitor's session for the length of one request."""

    def __init__(
        self,
        locator: Locator | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self.locator = locator
        fields = dict(fields or {})
        self._meta = {k: v for k, v in fields.items() if k.startswith(META_PREFIX)}
        self._data: dict[str, Any] = {}
        for name, raw in fields.items():
            if not name.startswith(META_PREFIX):
                try:
                    self._data[name] = json.loads(raw)
                except ValueError:
                    continue  # a value this code did not write: ignore it, never crash
        self._sets: dict[str, str] = {}
        self._deletes: set[str] = set()
        self._incrs: dict[str, int] = {}
        self.ended = False

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

    def meta(self, field: str) -> str | None:
        return self._meta.get(field)

    @property
    def created_at(self) -> float | None:
        raw = self._meta.get(F_CREATED)
        return None if raw is None else int(raw) / 1000

    @property
    def last_seen(self) -> float | None:
        raw = self._meta.get(F_SEEN)
        return None if raw is None else int(raw) / 1000

    @property
    def valid_after(self) -> int | None:
        """The user's "sessions valid after" mark this session was issued under."""
        raw = self._meta.get(F_VALID)
        return None if raw is None else int(raw)

    # ----- attributes ------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.delete(name)

    def set(self, name: str, value: Any) -> None:
        _check_name(name)
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        self._data[name] = json.loads(encoded)
        self._sets[name] = encoded
        self._deletes.discard(name)
        self._incrs.pop(name, None)

    def delete(self, name: str) -> None:
        _check_name(name)
        self._data.pop(name, None)
        self._sets.pop(name, None)
        self._incrs.pop(name, None)
        self._deletes.add(name)

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to an integer attribute atomically in Redis (HINCRBY)."""
        _check_name(name)
        if name in self._sets:  # set and incremented in one request: fold into the set
            self.set(name, int(self._data[name]) + amount)
            return
        self._incrs[name] = self._incrs.get(name, 0) + amount
        self._deletes.discard(name)
        self._data[name] = int(self._data.get(name) or 0) + amount

    # ----- the delta the store writes ---------------------------------------------
    @property
    def modified(self) -> bool:
        return bool(self._sets or self._deletes or self._incrs)

    def pending(self) -> tuple[dict[str, str], builtins.set[str], dict[str, int]]:
        """(fields to HSET, fields to HDEL, counters to HINCRBY)."""
        return dict(self._sets), set(self._deletes), dict(self._incrs)

    def mark_written(self, counters: Mapping[str, int] | None = None) -> None:
        """Forget the recorded changes; take Redis's values for the counters."""
        for name, value in (counters or {}).items():
            self._data[name] = value
        self._sets.clear()
        self._deletes.clear()
        self._incrs.clear()

    def adopt(self, locator: Locator, meta: Mapping[str, str]) -> None:
        """Become the newly stored session ``locator`` (after create or rotation)."""
        self.locator = locator
        self._meta = dict(meta)
