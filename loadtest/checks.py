"""Correctness checks: what each virtual user saw, compared with what it did.

A :class:`UserLedger` follows one virtual user: which session it is in, how many
``/home`` visits it made in that session, and which statuses it posted. The user feeds
it every answer; the ledger records a :class:`Violation` in the shared
:class:`ViolationLog` whenever the server contradicts the user's own history:

- ``signed-out``: a request made while signed in was answered as signed out (401, or a
  redirect to ``/``);
- ``views``: the session's ``views`` counter differs from the number of ``/home``
  visits made in that session;
- ``status-missing`` / ``status-duplicate`` / ``status-unexpected`` / ``status-order``:
  ``/fetchStatus`` lost a posted status, returned one twice, returned one this user
  never posted, or was not newest first;
- ``wrong-user``: a signed-in answer named another user;
- ``logout``: the session cookie was still accepted after logout;
- ``bad-answer``: a successful answer lacked the documented JSON body.

When a request fails in transit (timeout, reset, 5xx) the server may or may not have
applied it, so the ledger widens what it accepts instead of guessing: a lost ``/home``
visit lets ``views`` be one higher, a lost status may appear once or not at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

VIOLATION_KINDS: dict[str, str] = {
    "signed-out": "a request made while signed in was answered as signed out",
    "views": "views counter differs from the number of /home visits in the session",
    "status-missing": "a posted status is missing from /fetchStatus",
    "status-duplicate": "a status appears more than once in /fetchStatus",
    "status-unexpected": "/fetchStatus returned a status this user never posted",
    "status-order": "/fetchStatus was not newest first",
    "wrong-user": "a signed-in answer named another user",
    "logout": "the session cookie still worked after logout",
    "bad-answer": "a successful answer did not carry the documented JSON body",
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
    at: float
    detail: str

    def describe(self) -> str:
        return (
            f"[{self.kind}] user {self.user} session {self.session}, {self.route} "
            f"at {self.at:.1f}s: {self.detail}"
        )

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class ViolationLog:
    """Every violation counted by kind; the first ``keep`` kept in full for the reports."""

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
        """Count ``n`` checks of ``name`` (one of :data:`CHECK_NAMES`) that were made."""
        self.checks[name] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _short(text: str, width: int = 48) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def is_signed_out_answer(status: int, location: str | None) -> bool:
    """True when a response means "you are not signed in": 401, or a redirect to ``/``."""
    if status == 401:
        return True
    if 300 <= status < 400 and location is not None:
        return urlsplit(location).path in ("", "/")
    return False


class UserLedger:
    """One virtual user's history, checked against every answer it gets."""

    def __init__(self, user: int, user_name: str, log: ViolationLog) -> None:
        self.user = user
        self.user_name = user_name
        self.user_id: object = None
        self.log = log
        self.session = 0
        self.signed_in = False
        self.home_visits = 0
        self._views_low = 0
        self._views_high = 0
        self._posted: list[str] = []  # every status sent, in order, confirmed or not
        self._sequence: dict[str, int] = {}
        self._uncertain: set[str] = set()
        self._reported: set[tuple[str, str]] = set()
        self._order_reported_in = -1

    # -- sessions ----------------------------------------------------------------

    def sign_in(self) -> None:
        """A sign-in (register or login) succeeded: a new session with no visits."""
        self.session += 1
        self.signed_in = True
        self._views_low = self._views_high = 0

    def sign_out(self) -> None:
        self.signed_in = False

    def _violate(self, kind: str, route: str, at: float, detail: str) -> None:
        self.log.add(Violation(kind, self.user, self.session, route, at, detail))

    def answer(self, route: str, status: int, location: str | None, at: float) -> bool:
        """Check an answer to a request made while signed in; False if it said signed out.

        A signed-out answer is a violation and ends the session on the user's side, as a
        browser user would have to sign in again.
        """
        self.log.checked("signed-in")
        if not is_signed_out_answer(status, location):
            return True
        where = f" (redirect to {location})" if location else ""
        self._violate("signed-out", route, at, f"answered {status}{where} while signed in")
        self.sign_out()
        return False

    # -- /home views ---------------------------------------------------------------

    def home(self, route: str, views: object, at: float) -> None:
        """A ``/home`` visit answered with ``views``; it must count every visit so far."""
        self.home_visits += 1
        self._views_low += 1
        self._views_high += 1
        self.log.checked("views")
        low, high = self._views_low, self._views_high
        if not isinstance(views, int) or isinstance(views, bool):
            self._violate("views", route, at, f"views is {views!r}, expected {low}")
            return
        if not low <= views <= high:
            expected = str(low) if low == high else f"{low}..{high}"
            self._violate(
                "views", route, at, f"views is {views}, expected {expected} (visits this session)"
            )
        # Follow the server from here on, so one lost or extra count is reported once.
        self._views_low = self._views_high = views

    def home_unknown(self) -> None:
        """A ``/home`` visit whose outcome is unknown (timeout, 5xx): it may have counted."""
        self.home_visits += 1
        self._views_high += 1

    # -- identity --------------------------------------------------------------------

    def identity(self, route: str, user_name: object, user_id: object, at: float) -> None:
        """A signed-in answer must name this user, and always with the same id."""
        self.log.checked("identity")
        if user_name != self.user_name:
            self._violate(
                "wrong-user", route, at, f"user_name {user_name!r}, expected {self.user_name!r}"
            )
        if user_id is None:
            return
        if self.user_id is None:
            self.user_id = user_id
        elif user_id != self.user_id:
            self._violate("wrong-user", route, at, f"user_id {user_id!r}, was {self.user_id!r}")

    # -- statuses --------------------------------------------------------------------

    def _sent(self, text: str) -> None:
        self._sequence[text] = len(self._posted)
        self._posted.append(text)

    def posted(self, text: str) -> None:
        """The server confirmed this status (201)."""
        self._sent(text)

    def maybe_posted(self, text: str) -> None:
        """This status was sent but the outcome is unknown: it may appear once, or not."""
        self._sent(text)
        self._uncertain.add(text)

    @property
    def posted_count(self) -> int:
        return len(self._posted) - len(self._uncertain)

    def fetched(self, route: str, statuses: list[str], limit: int, at: float) -> None:
        """Compare a ``/fetchStatus`` answer (newest first, at most ``limit``) with the posts."""
        self.log.checked("fetches")
        counts = Counter(statuses)
        for text, n in counts.items():
            if n > 1:
                self._once("status-duplicate", text, route, at, f"{_short(text)} appears {n} times")
            elif text not in self._sequence:
                self._once("status-unexpected", text, route, at, f"{_short(text)} never posted")
        window = self._posted[-limit:] if limit > 0 else self._posted
        # When more statuses were sent than fit, the uncertain ones that never landed shift
        # the window: the oldest few in it may legitimately be cut off.
        if len(self._posted) > limit > 0:
            window = window[len(self._uncertain) :]
        expected = [t for t in window if t not in self._uncertain]
        self.log.checked("statuses", len(expected))
        for text in expected:
            if text not in counts:
                self._once("status-missing", text, route, at, f"{_short(text)} was posted")
        order = [self._sequence[t] for t in dict.fromkeys(statuses) if t in self._sequence]
        if order != sorted(order, reverse=True) and self._order_reported_in != self.session:
            self._order_reported_in = self.session
            self._violate("status-order", route, at, "statuses are not newest first")

    def _once(self, kind: str, text: str, route: str, at: float, detail: str) -> None:
        """Report a problem with one status once per user, not on every later fetch."""
        if (kind, text) not in self._reported:
            self._reported.add((kind, text))
            self._violate(kind, route, at, detail)

    def bad_answer(self, route: str, body: object, at: float) -> None:
        """A 2xx answer whose body is not what the app documents."""
        self._violate("bad-answer", route, at, f"unexpected body {_short(repr(body))}")

    # -- logout ----------------------------------------------------------------------

    def after_logout(self, route: str, status: int, location: str | None, at: float) -> None:
        """The old session cookie, replayed after logout, must be refused."""
        self.log.checked("logout")
        if not is_signed_out_answer(status, location):
            self._violate("logout", route, at, f"old session cookie answered {status}")
