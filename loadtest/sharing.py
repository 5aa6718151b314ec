"""The session-sharing matrix: which server processes served each signed-in user.

Every response names the process that served it (``X-Served-By: host:pid``). For each
virtual user, and for each of its sessions, the log counts the signed-in requests each
process answered. A user served by several processes while its answers stayed correct
is the evidence that the session lives in the shared store, not in one process.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

UNKNOWN = "(no X-Served-By)"


def _process_key(name: str) -> tuple[str, int, str]:
    """Sort ``host:pid`` names by host, then numerically by pid."""
    host, _, pid = name.rpartition(":")
    return (host, int(pid), name) if re.fullmatch(r"\d+", pid) else (name, -1, name)


@dataclass(frozen=True)
class SharingSummary:
    """Counts that tell at a glance whether sessions were shared."""

    processes: list[str]
    users: int
    users_signed_in: int
    users_by_process_count: dict[int, int]
    sessions: int
    sessions_by_process_count: dict[int, int]

    @property
    def users_shared(self) -> int:
        """Users served by two or more processes while signed in."""
        return sum(n for count, n in self.users_by_process_count.items() if count >= 2)

    @property
    def sessions_shared(self) -> int:
        """Single sessions (one sign-in to its logout) served by two or more processes."""
        return sum(n for count, n in self.sessions_by_process_count.items() if count >= 2)

    def headline(self) -> str:
        """E.g. ``"48/50 users were served by 2 processes"`` (the most common case)."""
        if not self.users_signed_in:
            return "no user was ever signed in"
        most = max(self.users_by_process_count)
        n = self.users_by_process_count[most]
        noun = "process" if most == 1 else "processes"
        line = f"{n}/{self.users} users were served by {most} {noun} while signed in"
        if most >= 2 and n != self.users_shared:
            line += f" ({self.users_shared}/{self.users} by 2 or more)"
        return line


class SharingLog:
    """Signed-in requests per user, session and serving process."""

    def __init__(self, users: int) -> None:
        self.users = users
        self.per_user: list[Counter[str]] = [Counter() for _ in range(users)]
        self.per_session: dict[tuple[int, int], Counter[str]] = {}

    def record(self, user: int, session: int, served_by: str | None) -> None:
        """One answer to a request that ``user`` made while signed in to ``session``."""
        name = served_by or UNKNOWN
        self.per_user[user][name] += 1
        self.per_session.setdefault((user, session), Counter())[name] += 1

    def processes(self) -> list[str]:
        """Every process that served a signed-in request, ordered by host and pid."""
        seen: set[str] = set()
        for counter in self.per_user:
            seen.update(counter)
        return sorted(seen, key=_process_key)

    def summary(self) -> SharingSummary:
        by_user = Counter(len(c) for c in self.per_user)
        by_session = Counter(len(c) for c in self.per_session.values())
        return SharingSummary(
            processes=self.processes(),
            users=self.users,
            users_signed_in=sum(1 for c in self.per_user if c),
            users_by_process_count=dict(sorted(by_user.items())),
            sessions=len(self.per_session),
            sessions_by_process_count=dict(sorted(by_session.items())),
        )


def process_labels(processes: list[str]) -> dict[str, str]:
    """Short column labels ``P1``, ``P2``… for process names, in the given order."""
    return {name: f"P{i}" for i, name in enumerate(processes, start=1)}
