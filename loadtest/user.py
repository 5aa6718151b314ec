"""The virtual user's scenario: sign up, then sign in, browse, post, fetch, sign out, repeat.

Each virtual user registers once with a unique e-mail, which also signs it in. Then, until
the deadline, every session goes:

1. ``GET /`` (the sign-in page; sets the ``_xsrf`` cookie), ``POST /login``
   (skipped for the first session, which registration opened);
2. a random number of actions around ``--actions``, with think time between them:
   ``GET /home`` (checks ``views``), ``POST /addStatus`` (a unique text),
   ``GET /fetchStatus`` (checks every status posted so far), ``GET /whoami``;
3. wrap-up, also when the deadline cuts the session short: a last ``GET /fetchStatus``
   and ``GET /home`` check, ``POST /logout``, and ``GET /home`` replaying the old
   session cookie, which must now be refused.

Every answer to a signed-in request goes to the :class:`~loadtest.checks.UserLedger`
(correctness) and the :class:`~loadtest.sharing.SharingLog` (which process served it).
"""

from __future__ import annotations

import asyncio
import random

from loadtest.checks import UserLedger, ViolationLog
from loadtest.client import Reply, UserClient
from loadtest.clock import RunClock
from loadtest.config import Config
from loadtest.sharing import SharingLog
from loadtest.stats import RunStats

ROUTE_INDEX = "GET /"
ROUTE_REGISTER = "POST /register"
ROUTE_LOGIN = "POST /login"
ROUTE_HOME = "GET /home"
ROUTE_ADD = "POST /addStatus"
ROUTE_FETCH = "GET /fetchStatus"
ROUTE_WHOAMI = "GET /whoami"
ROUTE_LOGOUT = "POST /logout"
ROUTE_PROBE = "GET /home (old cookie)"

_WORDS = (
    "status", "update", "hello", "redis", "tornado", "session", "shared", "process",
    "nginx", "load", "<b>bold?</b>", "a & b", "\"quoted\"", "it's", "émoji 🚀", "日本語",
)  # fmt: skip


class VirtualUser:
    """One simulated person with its own cookie jar, run by :meth:`run`."""

    def __init__(
        self,
        index: int,
        config: Config,
        run_id: str,
        *,
        stats: RunStats,
        sharing: SharingLog,
        violations: ViolationLog,
        clock: RunClock,
        rng: random.Random,
    ) -> None:
        self.index = index
        self.config = config
        self.clock = clock
        self.rng = rng
        self.sharing = sharing
        self.run_id = run_id
        self.email = f"lt-{run_id}-{index}@example.com"
        self.user_name = f"Load {run_id} #{index}"
        self.password = f"pw-{run_id}-{rng.getrandbits(64):016x}"
        self.ledger = UserLedger(index, self.user_name, violations)
        self.client = UserClient(
            config.target,
            stats,
            clock.now,
            new_connection_every=config.new_connection_every,
            timeout=config.timeout,
        )
        self.registered = False
        self.finished = False
        self._status_seq = 0

    # -- the loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Repeat sessions until the deadline, then finish the current one and stop."""
        failures = 0
        async with self.client:
            while not self.clock.over:
                if not self.ledger.signed_in and not await self._sign_in():
                    failures += 1
                    await asyncio.sleep(min(5.0, 0.5 * failures))
                    continue
                failures = 0
                await self._browse()
                await self._wrap_up()
        self.finished = True

    async def _think(self) -> None:
        if self.config.think > 0 and not self.clock.over:
            await asyncio.sleep(self.rng.uniform(0, 2 * self.config.think))

    async def _sign_in(self) -> bool:
        await self.client.request("GET", "/", ROUTE_INDEX, expect={200})
        await self._think()
        if not self.registered:
            reply = await self.client.request(
                "POST",
                "/register",
                ROUTE_REGISTER,
                expect={201},
                data={
                    "user_name": self.user_name,
                    "user_email": self.email,
                    "user_password": self.password,
                },
            )
            if reply.status == 201:
                self.registered = True
                self.ledger.sign_in()
                self._signed_in_answer(reply)
                return True
            if reply.status == 409:  # an earlier attempt landed after all
                self.registered = True
            elif reply.status is not None and reply.status < 500:
                return False
        reply = await self.client.request(
            "POST",
            "/login",
            ROUTE_LOGIN,
            expect={200},
            data={"user_email": self.email, "user_password": self.password},
        )
        if reply.status == 200:
            self.registered = True
            self.ledger.sign_in()
            self._signed_in_answer(reply)
            return True
        return False

    async def _browse(self) -> None:
        actions = self.config.actions
        count = self.rng.randint(max(1, actions // 2), max(1, actions + actions // 2))
        choices = (self._home, self._post_status, self._fetch, self._whoami)
        weights = (4, 3, 2, 2)
        for _ in range(count):
            if self.clock.over or not self.ledger.signed_in:
                return
            await self._think()
            await self.rng.choices(choices, weights)[0]()

    async def _wrap_up(self) -> None:
        if self.ledger.signed_in:
            await self._fetch()
        if self.ledger.signed_in:
            await self._home()
        if not self.ledger.signed_in:
            return
        await self._think()
        old_cookie = self.client.cookie(self.config.session_cookie)
        reply = await self.client.request("POST", "/logout", ROUTE_LOGOUT, expect={200})
        self._signed_in_answer(reply)
        self.ledger.sign_out()
        if reply.status == 200 and old_cookie:
            probe = await self.client.request(
                "GET",
                "/home",
                ROUTE_PROBE,
                expect={401},
                cookies={self.config.session_cookie: old_cookie},
            )
            if probe.status is not None:
                self.ledger.after_logout(ROUTE_PROBE, probe.status, probe.location, probe.at)

    # -- actions while signed in -------------------------------------------------------

    def _signed_in_answer(self, reply: Reply) -> bool:
        """Record who served a signed-in request; False unless it answered signed in."""
        if reply.status is None:
            return False
        self.sharing.record(self.index, self.ledger.session, reply.served_by)
        return self.ledger.answer(reply.route, reply.status, reply.location, reply.at)

    async def _home(self) -> None:
        reply = await self.client.request("GET", "/home", ROUTE_HOME, expect={200})
        if not self._signed_in_answer(reply) or reply.status != 200:
            if reply.status is None or reply.status >= 500:
                self.ledger.home_unknown()
            return
        message = reply.message
        if not isinstance(message, dict) or "views" not in message:
            self.ledger.bad_answer(reply.route, reply.body, reply.at)
            return
        self.ledger.home(reply.route, message["views"], reply.at)
        self.ledger.identity(reply.route, message.get("user_name"), None, reply.at)

    def _status_text(self) -> str:
        self._status_seq += 1
        words = self.rng.choices(_WORDS, k=self.rng.randint(0, 12))
        head = f"lt-{self.run_id} u{self.index} s{self.ledger.session} n{self._status_seq}"
        return " ".join([head, *words])

    async def _post_status(self) -> None:
        text = self._status_text()
        reply = await self.client.request(
            "POST", "/addStatus", ROUTE_ADD, expect={201}, data={"status": text}
        )
        self._signed_in_answer(reply)
        if reply.status == 201:
            self.ledger.posted(text)
        elif reply.status is None or reply.status >= 500:
            self.ledger.maybe_posted(text)  # it may have been stored before the failure

    async def _fetch(self) -> None:
        limit = self.config.fetch_limit
        reply = await self.client.request(
            "GET", f"/fetchStatus?limit={limit}", ROUTE_FETCH, expect={200}
        )
        if not self._signed_in_answer(reply) or reply.status != 200:
            return
        items = reply.message
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get("user_status"), str) for item in items
        ):
            self.ledger.bad_answer(reply.route, reply.body, reply.at)
            return
        self.ledger.fetched(reply.route, [item["user_status"] for item in items], limit, reply.at)

    async def _whoami(self) -> None:
        reply = await self.client.request("GET", "/whoami", ROUTE_WHOAMI, expect={200})
        if not self._signed_in_answer(reply) or reply.status != 200:
            return
        message = reply.message
        if not isinstance(message, dict):
            self.ledger.bad_answer(reply.route, reply.body, reply.at)
            return
        self.ledger.identity(
            reply.route, message.get("user_name"), message.get("user_id"), reply.at
        )
