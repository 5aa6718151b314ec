"""What the locustfile checks and reports beyond Locust's own statistics.

Plain Python (no Locust import), so the suite can feed it fabricated histories:

- :class:`UserLedger` follows one virtual user (its session, its ``/home`` visits, the
  statuses it posted) and turns every answer that contradicts that history into a
  :class:`Violation`, kept in the shared :class:`ViolationLog`;
- :class:`SharingMatrix` counts, per user and per session, the signed-in requests each
  server process (``X-Served-By: host:pid``) answered, and renders the matrix as text,
  JSON and HTML.

A request that failed in transit (timeout, reset, 5xx) may or may not have been applied
by the server, so the ledger widens what it accepts instead of guessing: a lost ``/home``
visit lets ``views`` be one higher, a lost status may appear once or not at all.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

VIOLATION_KINDS: dict[str, str] = {
    "signed-out": "a signed-in request was answered as signed out",
    "views": "the views counter differs from the user's own count of /home visits",
    "status-missing": "a posted status is missing from /fetchStatus",
    "status-duplicate": "a status appears more than once in /fetchStatus",
    "status-unexpected": "/fetchStatus returned a status this user never posted",
    "status-order": "/fetchStatus was not newest first",
    "wrong-user": "a signed-in answer named another user",
    "logout": "the old session cookie was accepted after logout",
    "bad-answer": "a successful answer lacked the documented JSON body",
}

CHECK_NAMES: dict[str, str] = {
    "signed-in": "answers to signed-in requests",
    "views": "views counters",
    "fetches": "status lists fetched",
    "statuses": "posted statuses looked for",
    "identity": "user names and ids",
    "logout": "session cookies replayed after logout",
}


@dataclass(frozen=True)
class Violation:
    """One contradiction between what a virtual user did and what the server said."""

    kind: str
    user: int
    session: int
    route: str
    detail: str

    def describe(self) -> str:
        return f"[{self.kind}] user {self.user} session {self.session}, {self.route}: {self.detail}"


class ViolationLog:
    """Violations counted by kind (the first ``keep`` kept in full) and checks made."""

    def __init__(self, keep: int = 500) -> None:
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()
        self.examples: list[Violation] = []

    def add(self, violation: Violation) -> None:
        self.counts[violation.kind] += 1
        if len(self.examples) < self.keep:
            self.examples.append(violation)

    def checked(self, name: str, n: int = 1) -> None:
        self.checks[name] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def state(self) -> dict[str, Any]:
        """Everything this log holds, as plain data (a Locust worker sends it to the master)."""
        return {
            "counts": dict(self.counts),
            "checks": dict(self.checks),
            "examples": [asdict(v) for v in self.examples],
        }

    @classmethod
    def merged(cls, states: Iterable[dict[str, Any]]) -> ViolationLog:
        """One log holding the :meth:`state` of several."""
        log = cls()
        for state in states:
            log.counts.update(state["counts"])
            log.checks.update(state["checks"])
            for example in state["examples"]:
                if len(log.examples) < log.keep:
                    log.examples.append(Violation(**example))
        return log

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "by_kind": dict(sorted(self.counts.items())),
            "checks": dict(sorted(self.checks.items())),
            "examples": [asdict(v) for v in self.examples],
        }


def is_signed_out_answer(status: int, location: str | None) -> bool:
    """True when a response means "you are not signed in": 401, or a redirect to ``/``."""
    if status == 401:
        return True
    if 300 <= status < 400 and location is not None:
        return urlsplit(location).path in ("", "/")
    return False


def _short(text: str, width: int = 48) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


class UserLedger:
    """One virtual user's history, checked against every answer it gets.

    Each check method returns the violations it found (also added to the log), so the
    caller can mark the very request that revealed them as failed.
    """

    def __init__(self, user: int, user_name: str, log: ViolationLog) -> None:
        self.user = user
        self.user_name = user_name
        self.user_id: object = None
        self.log = log
        self.session = 0
        self.signed_in = False
        self._views_low = self._views_high = 0
        self._posted: list[str] = []  # every status sent, in order, confirmed or not
        self._sequence: dict[str, int] = {}
        self._uncertain: set[str] = set()
        self._reported: set[tuple[str, str]] = set()
        self._order_reported_in = -1
        self._found: list[Violation] = []

    def _violate(self, kind: str, route: str, detail: str) -> None:
        violation = Violation(kind, self.user, self.session, route, detail)
        self.log.add(violation)
        self._found.append(violation)

    def _take(self) -> list[Violation]:
        found, self._found = self._found, []
        return found

    # -- sessions ----------------------------------------------------------------

    def sign_in(self) -> None:
        """A sign-in (registration or login) succeeded: a new session with no visits."""
        self.session += 1
        self.signed_in = True
        self._views_low = self._views_high = 0

    def sign_out(self) -> None:
        self.signed_in = False

    def answer(self, route: str, status: int, location: str | None) -> list[Violation]:
        """Check the status of an answer to a request made while signed in.

        A signed-out answer is a violation and ends the session on the user's side: like
        a person, the user signs in again.
        """
        self.log.checked("signed-in")
        if is_signed_out_answer(status, location):
            where = f" (redirect to {location})" if status != 401 else ""
            self._violate("signed-out", route, f"answered {status}{where} while signed in")
            self.sign_out()
        return self._take()

    # -- /home views -------------------------------------------------------------

    def home(self, route: str, views: object) -> list[Violation]:
        """A ``/home`` visit answered with ``views``: it must count every visit so far."""
        self._views_low += 1
        self._views_high += 1
        self.log.checked("views")
        low, high = self._views_low, self._views_high
        if not isinstance(views, int) or isinstance(views, bool):
            self._violate("views", route, f"views is {views!r}, expected {low}")
            return self._take()
        if not low <= views <= high:
            expected = str(low) if low == high else f"{low}..{high}"
            self._violate("views", route, f"views is {views}, expected {expected}")
        # Follow the server from here on, so one lost or extra count is reported once.
        self._views_low = self._views_high = views
        return self._take()

    def home_unknown(self) -> None:
        """A ``/home`` visit whose outcome is unknown (timeout, 5xx): it may have counted."""
        self._views_high += 1

    # -- identity ----------------------------------------------------------------

    def identity(self, route: str, user_name: object, user_id: object) -> list[Violation]:
        """A signed-in answer must name this user, and always with the same id."""
        self.log.checked("identity")
        if user_name != self.user_name:
            self._violate(
                "wrong-user", route, f"user_name {user_name!r}, expected {self.user_name!r}"
            )
        if user_id is not None:
            if self.user_id is None:
                self.user_id = user_id
            elif user_id != self.user_id:
                self._violate("wrong-user", route, f"user_id {user_id!r}, was {self.user_id!r}")
        return self._take()

    # -- statuses ----------------------------------------------------------------

    def posted(self, text: str, *, certain: bool = True) -> None:
        """A status was sent: confirmed (201), or with an unknown outcome (``certain=False``)."""
        self._sequence[text] = len(self._posted)
        self._posted.append(text)
        if not certain:
            self._uncertain.add(text)

    def fetched(self, route: str, statuses: list[str], limit: int) -> list[Violation]:
        """Compare a ``/fetchStatus`` answer (newest first, at most ``limit``) with the posts."""
        self.log.checked("fetches")
        counts = Counter(statuses)
        for text, n in counts.items():
            if n > 1:
                self._once("status-duplicate", text, route, f"{_short(text)} appears {n} times")
            elif text not in self._sequence:
                self._once("status-unexpected", text, route, f"{_short(text)} never posted")
        window = self._posted[-limit:]
        # When more statuses were sent than fit, the uncertain ones that never landed shift
        # the window: the oldest few in it may legitimately be cut off.
        if len(self._posted) > limit:
            window = window[len(self._uncertain) :]
        expected = [t for t in window if t not in self._uncertain]
        self.log.checked("statuses", len(expected))
        for text in expected:
            if text not in counts:
                self._once("status-missing", text, route, f"{_short(text)} was posted")
        order = [self._sequence[t] for t in dict.fromkeys(statuses) if t in self._sequence]
        if order != sorted(order, reverse=True) and self._order_reported_in != self.session:
            self._order_reported_in = self.session
            self._violate("status-order", route, "statuses are not newest first")
        return self._take()

    def _once(self, kind: str, text: str, route: str, detail: str) -> None:
        """Report a problem with one status once per user, not on every later fetch."""
        if (kind, text) not in self._reported:
            self._reported.add((kind, text))
            self._violate(kind, route, detail)

    def bad_answer(self, route: str, body: object) -> list[Violation]:
        """A 2xx answer whose body is not what the app documents."""
        self._violate("bad-answer", route, f"unexpected body {_short(repr(body))}")
        return self._take()

    # -- logout ------------------------------------------------------------------

    def after_logout(self, route: str, status: int, location: str | None) -> list[Violation]:
        """The old session cookie, replayed after logout, must be refused."""
        self.log.checked("logout")
        if not is_signed_out_answer(status, location):
            self._violate("logout", route, f"old session cookie answered {status}")
        return self._take()


# --- the session-sharing matrix --------------------------------------------------------

UNKNOWN_PROCESS = "(no X-Served-By)"


def _process_key(name: str) -> tuple[str, int, str]:
    """Sort ``host:pid`` names by host, then numerically by pid."""
    host, _, pid = name.rpartition(":")
    return (host, int(pid), name) if re.fullmatch(r"\d+", pid) else (name, -1, name)


def _host(name: str) -> str:
    return name.rpartition(":")[0] or name


@dataclass(frozen=True)
class UserRow:
    """One row of the matrix: how many sessions, processes and hosts served one user."""

    user: int
    sessions: int
    requests: int
    by_process: dict[str, int]

    @property
    def processes(self) -> int:
        return len(self.by_process)

    @property
    def hosts(self) -> int:
        return len({_host(p) for p in self.by_process})

    def to_json(self) -> dict[str, object]:
        return {
            "user": self.user,
            "sessions": self.sessions,
            "processes": self.processes,
            "hosts": self.hosts,
            "requests": self.requests,
            "by_process": self.by_process,
        }


class SharingMatrix:
    """Signed-in requests per user, per session and per serving process."""

    def __init__(self) -> None:
        self.per_user: dict[int, Counter[str]] = {}
        self.per_session: dict[tuple[int, int], Counter[str]] = {}

    def record(self, user: int, session: int, served_by: str | None) -> None:
        """One answer to a request that ``user`` made while signed in to ``session``."""
        name = served_by or UNKNOWN_PROCESS
        self.per_user.setdefault(user, Counter())[name] += 1
        self.per_session.setdefault((user, session), Counter())[name] += 1

    def state(self) -> list[list[Any]]:
        """The counts as plain data: ``[user, session, {process: requests}]`` each."""
        return [[user, session, dict(c)] for (user, session), c in self.per_session.items()]

    @classmethod
    def merged(cls, states: Iterable[list[list[Any]]]) -> SharingMatrix:
        """One matrix holding the :meth:`state` of several (users numbered apart)."""
        matrix = cls()
        for state in states:
            for user, session, counts in state:
                matrix.per_user.setdefault(user, Counter()).update(counts)
                matrix.per_session.setdefault((user, session), Counter()).update(counts)
        return matrix

    def processes(self) -> list[str]:
        seen: set[str] = set()
        for counter in self.per_user.values():
            seen.update(counter)
        return sorted(seen, key=_process_key)

    def rows(self) -> list[UserRow]:
        sessions = Counter(user for user, _ in self.per_session)
        return [
            UserRow(
                user,
                sessions[user],
                sum(counter.values()),
                {p: counter[p] for p in sorted(counter, key=_process_key)},
            )
            for user, counter in sorted(self.per_user.items())
        ]

    def summary(self) -> dict[str, object]:
        """Counts that tell at a glance whether sessions were shared."""
        rows = self.rows()
        by_user = Counter(row.processes for row in rows)
        by_session = Counter(len(c) for c in self.per_session.values())
        processes = self.processes()
        return {
            "processes": processes,
            "hosts": sorted({_host(p) for p in processes}),
            "users": len(rows),
            "users_shared": sum(1 for row in rows if row.processes >= 2),
            "users_on_several_hosts": sum(1 for row in rows if row.hosts >= 2),
            "users_by_process_count": dict(sorted(by_user.items())),
            "sessions": len(self.per_session),
            "sessions_shared": sum(n for k, n in by_session.items() if k >= 2),
        }

    def headline(self) -> str:
        """E.g. ``"48/50 users were served by 2 or more processes while signed in (...)"``."""
        rows = self.rows()
        if not rows:
            return "no user was ever signed in"
        processes = self.processes()
        hosts = {_host(p) for p in processes}
        shared = sum(1 for row in rows if row.processes >= 2)
        sessions_shared = sum(1 for c in self.per_session.values() if len(c) >= 2)
        line = (
            f"{shared}/{len(rows)} users were served by 2 or more processes while signed in; "
            f"{sessions_shared}/{len(self.per_session)} single sessions were "
            f"({len(processes)} processes on {len(hosts)} host(s))"
        )
        if len(hosts) > 1:
            several = sum(1 for row in rows if row.hosts >= 2)
            line += f"; {several}/{len(rows)} users were served by 2 or more hosts"
        return line

    def to_json(self) -> dict[str, object]:
        return {**self.summary(), "matrix": [row.to_json() for row in self.rows()]}

    def render_text(self, max_rows: int = 50) -> str:
        """The matrix as a table: one row per user, one column ``P1``… per process."""
        processes = self.processes()
        lines = [
            "Session sharing (signed-in requests per user and serving process)",
            "  " + self.headline(),
        ]
        if not processes:
            return "\n".join(lines)
        labels = [f"P{i}" for i in range(1, len(processes) + 1)]
        lines.append(
            "  " + ", ".join(f"{label} = {p}" for label, p in zip(labels, processes, strict=True))
        )
        header = ["user", "sessions", "processes", "hosts", *labels]
        lines.append("  " + " ".join(f"{h:>9}" for h in header))
        rows = self.rows()
        for row in rows[:max_rows]:
            cells = [row.user, row.sessions, row.processes, row.hosts]
            cells += [row.by_process.get(p, 0) for p in processes]
            lines.append("  " + " ".join(f"{c:>9}" for c in cells))
        if len(rows) > max_rows:
            lines.append(f"  ({max_rows} of {len(rows)} users shown; the JSON lists all)")
        return "\n".join(lines)

    def render_html(self) -> str:
        """A self-contained HTML section: the headline and the matrix as a heat map."""
        processes = self.processes()
        rows = self.rows()
        peak = max((n for row in rows for n in row.by_process.values()), default=1)
        head = "".join(
            f"<th>P{i}<br>{html.escape(p)}</th>" for i, p in enumerate(processes, start=1)
        )
        body = []
        for row in rows:
            cells = []
            for p in processes:
                n = row.by_process.get(p, 0)
                shade = 0.1 + 0.7 * n / peak if n else 0
                cells.append(f"<td style='background:rgba(35,110,200,{shade:.2f})'>{n}</td>")
            body.append(
                f"<tr><td>{row.user}</td><td>{row.sessions}</td><td>{row.processes}</td>"
                f"<td>{row.hosts}</td>{''.join(cells)}</tr>"
            )
        return (
            f"<section id='session-sharing' style='{_SECTION_STYLE}'>"
            "<h2>Session sharing</h2>"
            f"<p>{html.escape(self.headline())}</p>"
            f"<table style='{_TABLE_STYLE}' border='1' cellpadding='4'>"
            f"<tr><th>user</th><th>sessions</th><th>processes</th><th>hosts</th>{head}</tr>"
            f"{''.join(body)}</table></section>"
        )


_SECTION_STYLE = "font-family:sans-serif;margin:2em"
_TABLE_STYLE = "border-collapse:collapse;text-align:right"


def render_violations_text(log: ViolationLog) -> str:
    """Checks made and violations found, for the end of a run."""
    lines = ["Correctness checks", f"  {'check':<40} {'made':>9}"]
    for name, title in CHECK_NAMES.items():
        lines.append(f"  {title:<40} {log.checks[name]:>9,}")
    if not log.total:
        lines.append("  violations: none")
        return "\n".join(lines)
    lines.append(f"  violations: {log.total}")
    for kind, n in sorted(log.counts.items()):
        lines.append(f"    {kind:<18} {n:>6}  {VIOLATION_KINDS[kind]}")
    lines.extend(f"  {v.describe()}" for v in log.examples[:50])
    return "\n".join(lines)


def render_violations_html(log: ViolationLog) -> str:
    items = "".join(f"<li>{html.escape(v.describe())}</li>" for v in log.examples)
    checks = "".join(
        f"<tr><td>{html.escape(title)}</td><td>{log.checks[name]:,}</td></tr>"
        for name, title in CHECK_NAMES.items()
    )
    verdict = "no violation" if not log.total else f"{log.total} violation(s)"
    return (
        f"<section id='correctness' style='{_SECTION_STYLE}'>"
        f"<h2>Correctness checks: {verdict}</h2>"
        f"<table style='{_TABLE_STYLE}' border='1' cellpadding='4'>"
        f"<tr><th>check</th><th>made</th></tr>{checks}</table>"
        f"<ul>{items}</ul></section>"
    )
