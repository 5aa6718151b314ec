"""Load test on Locust: one session served by many processes, and every answer checked.

Run it with ``make loadtest`` (headless) or ``make loadtest-ui`` (Locust's web UI), or
``locust -f loadtest/locustfile.py --host URL ...``; ``docs/LOADTEST.md`` explains it.

Each virtual user has its own cookie jar. It registers once, which signs it in, and
then repeats sessions: ``GET /`` and ``POST /login`` (after the first), a random number
of actions (``GET /home``, ``POST /addStatus``, ``GET /fetchStatus``, ``GET /whoami``;
the first session does each of them once, so even a short run exercises every route),
then a last fetch and ``/home``, ``POST /logout``, and ``GET /home`` replaying the old
session cookie, which must be refused. Every ``--new-connection-every`` requests it
asks the server to close the connection, so its next request arrives on a new one: a
kept-alive connection stays with one process, new ones spread the user over them.

Every answer to a signed-in request is checked against the user's own history
(:mod:`loadtest.checks`); a contradiction marks that request failed in Locust's failure
table, which makes Locust exit with status 1. The session-sharing matrix (per user, the
processes and hosts that served it while signed in) is printed at the end, written as
JSON (``--sharing-json``), shown in the web UI's "Session sharing" tab (and at
``/sharing``), and appended to the ``--html`` report.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import (
    STATE_CLEANUP,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)
from locust.user.task import LOCUST_STATE_STOPPING

from loadtest.checks import (
    VIOLATION_KINDS,
    SharingMatrix,
    UserLedger,
    Violation,
    ViolationLog,
    render_violations_html,
    render_violations_text,
)
from sessions.mixin import COOKIE_NAME

SESSION_COOKIE = COOKIE_NAME
FETCH_LIMIT = 1000
WORDS = (
    "status", "update", "hello", "redis", "tornado", "session", "shared", "process",
    "<b>bold?</b>", "a & b", "\"quoted\"", "it's", "émoji 🚀", "日本語",
)  # fmt: skip

RUN_ID = secrets.token_hex(4)
VIOLATIONS = ViolationLog()
MATRIX = SharingMatrix()
_user_numbers = itertools.count()
# Distributed runs (--processes, --master/--worker): each worker sends its matrix and
# checks to the master every few seconds and when it stops; the master adds them up.
STATE_MESSAGE = "session-checks"
STOP_MESSAGE = "session-checks-stop"
STATE_EVERY = 3.0
USERS_PER_WORKER = 100_000  # worker i numbers its users from i * USERS_PER_WORKER
_worker_states: dict[str, dict[str, Any]] = {}


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("session checks (loadtest/locustfile.py)")
    group.add_argument(
        "--think", type=float, default=0.1, help="mean pause between a user's requests, seconds"
    )
    group.add_argument("--actions", type=int, default=20, help="mean number of actions per session")
    group.add_argument(
        "--new-connection-every", type=int, default=3,
        help="ask for a new TCP connection after this many requests (0: never)",
    )  # fmt: skip
    group.add_argument(
        "--require-sharing", action="store_true", default=False,
        help="fail unless some user was served by 2 or more processes while signed in",
    )  # fmt: skip
    group.add_argument(
        "--sharing-json", default="reports/loadtest-sharing.json",
        help="where to write the sharing matrix and the checks as JSON ('' for nowhere)",
    )  # fmt: skip
    group.add_argument(
        "--progress", choices=("auto", "lines", "off"), default="auto",
        help="headless: a live progress line on stderr (auto: redrawn on a terminal)",
    )  # fmt: skip


class SessionUser(FastHttpUser):
    """One person: sign up once, then sign in, browse, post, fetch, sign out, repeat."""

    concurrency = 1  # one connection at a time, as one browser tab would
    network_timeout = 15.0
    connection_timeout = 15.0

    def wait_time(self) -> float:  # between sessions
        return random.uniform(0, 2 * self.options.think)

    def on_start(self) -> None:
        self.options = self.environment.parsed_options
        runner = self.environment.runner
        offset = runner.worker_index * USERS_PER_WORKER if isinstance(runner, WorkerRunner) else 0
        self.number = offset + next(_user_numbers)
        self.email = f"lt-{RUN_ID}-{self.number}@example.com"
        self.user_name = f"Load {RUN_ID} #{self.number}"
        self.password = f"pw-{secrets.token_hex(12)}"
        self.ledger = UserLedger(self.number, self.user_name, VIOLATIONS)
        self.registered = False
        self.sent = 0
        self.posts = 0

    @task
    def one_session(self) -> None:
        if not self.ledger.signed_in and not self.sign_in():
            gevent.sleep(1.0)  # the server refused or failed: back off, try again
            return
        actions = (self.home, self.post_status, self.fetch, self.whoami)
        low = max(1, self.options.actions // 2)
        count = random.randint(low, max(low, self.options.actions * 3 // 2))
        plan = random.choices(actions, (4, 3, 2, 2), k=count)
        covering = 0
        if self.ledger.session == 1:
            # The user's first session does every action once, in a random order, before
            # the random ones, and finishes them even when the run is stopping (within
            # --stop-timeout): however short the run, every route is exercised.
            covering = len(actions)
            plan = random.sample(actions, covering) + plan[covering:]
        for done, action in enumerate(plan):
            if not self.ledger.signed_in or (done >= covering and self.stopping()):
                break
            self.think()
            action()
        self.wrap_up()

    # -- plumbing ----------------------------------------------------------------------

    def stopping(self) -> bool:
        """The run is ending: finish the session in progress (``--stop-timeout``)."""
        state = self.environment.runner.state if self.environment.runner else None
        return self._state == LOCUST_STATE_STOPPING or state in (
            STATE_CLEANUP,
            STATE_STOPPING,
            STATE_STOPPED,
        )

    def think(self) -> None:
        if self.options.think > 0 and not self.stopping():
            gevent.sleep(random.uniform(0, 2 * self.options.think))

    def cookie(self, name: str) -> str | None:
        for item in self.client.cookiejar:
            if item.name == name:
                return item.value
        return None

    @contextmanager
    def request(
        self, method: str, path: str, name: str, expect: int, *,
        data: dict[str, str] | None = None, cookie: str | None = None,
    ) -> Iterator[Call]:  # fmt: skip
        """One request, reported to Locust under ``name`` when the block ends.

        The block may mark it failed with the violations it found; otherwise it fails
        when the status is not ``expect`` (transport errors are reported by Locust).
        """
        headers = {"Accept": "application/json"}
        body = None
        if data is not None:
            body = urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-XSRFToken"] = self.cookie("_xsrf") or ""
        if cookie is not None:  # replaces what the jar would send
            headers["Cookie"] = cookie
        self.sent += 1
        every = self.options.new_connection_every
        if every > 0 and self.sent % every == 0:
            headers["Connection"] = "close"
        with self.client.request(
            method,
            path,
            name=name,
            data=body,
            headers=headers,
            catch_response=True,
            allow_redirects=False,
        ) as response:
            call = Call(response)
            yield call
            if call.violations:
                kinds = sorted({v.kind for v in call.violations})
                response.failure("; ".join(f"{kind}: {VIOLATION_KINDS[kind]}" for kind in kinds))
            elif call.status == expect or call.accepted:
                response.success()
            elif call.status:
                response.failure(f"status {call.status}, expected {expect}")

    def signed_in_answer(self, call: Call) -> bool:
        """Record who served a signed-in request; False unless it answered as signed in."""
        if not call.status:
            return False
        MATRIX.record(self.number, self.ledger.session, call.served_by)
        call.violations += self.ledger.answer(call.name, call.status, call.location)
        return self.ledger.signed_in

    # -- the scenario ------------------------------------------------------------------

    def sign_in(self) -> bool:
        with self.request("GET", "/", "/", 200):
            pass
        self.think()
        if not self.registered:
            form = {
                "user_name": self.user_name,
                "user_email": self.email,
                "user_password": self.password,
            }
            with self.request("POST", "/register", "/register", 201, data=form) as call:
                if call.status == 201:
                    self.registered = True
                    self.ledger.sign_in()
                    self.signed_in_answer(call)
                    return True
                if call.status == 409:  # an earlier attempt landed after all
                    call.accepted = True
                    self.registered = True
                elif 0 < call.status < 500:
                    return False
        form = {"user_email": self.email, "user_password": self.password}
        with self.request("POST", "/login", "/login", 200, data=form) as call:
            if call.status == 200:
                self.registered = True
                self.ledger.sign_in()
                self.signed_in_answer(call)
                return True
        return False

    def home(self) -> None:
        with self.request("GET", "/home", "/home", 200) as call:
            if not self.signed_in_answer(call) or call.status != 200:
                if not call.status or call.status >= 500:
                    self.ledger.home_unknown()  # it may have counted
                return
            message = call.message
            if not isinstance(message, dict) or "views" not in message:
                call.violations += self.ledger.bad_answer(call.name, call.body)
                return
            call.violations += self.ledger.home(call.name, message["views"])
            call.violations += self.ledger.identity(call.name, message.get("user_name"), None)

    def post_status(self) -> None:
        self.posts += 1
        words = random.choices(WORDS, k=random.randint(0, 10))
        text = " ".join(
            [f"lt-{RUN_ID} u{self.number} s{self.ledger.session} n{self.posts}", *words]
        )
        with self.request("POST", "/addStatus", "/addStatus", 201, data={"status": text}) as call:
            self.signed_in_answer(call)
            if call.status == 201:
                self.ledger.posted(text)
            elif not call.status or call.status >= 500:
                self.ledger.posted(text, certain=False)  # it may have been stored

    def fetch(self) -> None:
        with self.request("GET", f"/fetchStatus?limit={FETCH_LIMIT}", "/fetchStatus", 200) as call:
            if not self.signed_in_answer(call) or call.status != 200:
                return
            items = call.message
            if not isinstance(items, list) or not all(
                isinstance(item, dict) and isinstance(item.get("user_status"), str)
                for item in items
            ):
                call.violations += self.ledger.bad_answer(call.name, call.body)
                return
            statuses = [item["user_status"] for item in items]
            call.violations += self.ledger.fetched(call.name, statuses, FETCH_LIMIT)

    def whoami(self) -> None:
        with self.request("GET", "/whoami", "/whoami", 200) as call:
            if not self.signed_in_answer(call) or call.status != 200:
                return
            message = call.message
            if not isinstance(message, dict):
                call.violations += self.ledger.bad_answer(call.name, call.body)
                return
            user = (message.get("user_name"), message.get("user_id"))
            call.violations += self.ledger.identity(call.name, *user)

    def wrap_up(self) -> None:
        """Last checks, logout, and the old cookie replayed: it must be refused."""
        if self.ledger.signed_in:
            self.fetch()
        if self.ledger.signed_in:
            self.home()
        if not self.ledger.signed_in:
            return
        self.think()
        old_cookie = self.cookie(SESSION_COOKIE)
        with self.request("POST", "/logout", "/logout", 200, data={}) as call:
            self.signed_in_answer(call)
            logged_out = call.status == 200
        self.ledger.sign_out()
        if logged_out and old_cookie:
            cookie = f"{SESSION_COOKIE}={old_cookie}"
            with self.request("GET", "/home", "/home (old cookie)", 401, cookie=cookie) as call:
                if call.status:
                    call.violations += self.ledger.after_logout(
                        call.name, call.status, call.location
                    )


class Call:
    """One response as the checks see it, and the violations found in it."""

    def __init__(self, response: Any) -> None:
        self.name: str = response.request_meta["name"]
        self.status: int = response.status_code or 0  # 0: no response (transport error)
        headers = response.headers or {}
        self.served_by: str | None = headers.get("X-Served-By")
        self.location: str | None = headers.get("Location")
        self.violations: list[Violation] = []
        self.accepted = False  # an answer other than the expected one that is fine too
        try:
            self.body: object = json.loads(response.content) if response.content else None
        except ValueError:
            self.body = None

    @property
    def message(self) -> object:
        """``message`` of the app's JSON envelope, or None."""
        return self.body.get("message") if isinstance(self.body, dict) else None


# --- reports: end of run, web UI, HTML --------------------------------------------------


def sharing_report() -> dict[str, object]:
    return {"run_id": RUN_ID, "sharing": MATRIX.to_json(), "checks": VIOLATIONS.to_json()}


def report_html() -> str:
    return MATRIX.render_html() + render_violations_html(VIOLATIONS)


def _worker_state(final: bool) -> dict[str, Any]:
    return {"final": final, "matrix": MATRIX.state(), "violations": VIOLATIONS.state()}


def _on_worker_state(environment: Environment, msg: Any, **_: object) -> None:
    """On the master: a worker's latest matrix and checks; the totals are rebuilt."""
    global MATRIX, VIOLATIONS
    known = _worker_states.get(msg.node_id)
    if known is not None and known["final"] and not msg.data["final"]:
        return  # a periodic report overtaken by the last one: the last one is complete
    _worker_states[msg.node_id] = msg.data
    MATRIX = SharingMatrix.merged(state["matrix"] for state in _worker_states.values())
    VIOLATIONS = ViolationLog.merged(state["violations"] for state in _worker_states.values())


def _send_states(environment: Environment) -> None:
    """On a worker: the matrix and checks to the master, every few seconds."""
    runner = environment.runner
    stopped = (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP)
    while runner is not None and runner.state not in stopped:
        gevent.sleep(STATE_EVERY)
        # The run may have stopped during the sleep and the final report gone out
        # (test_stop): a report sent now would replace it on the master.
        if runner.state in stopped:
            break
        runner.send_message(STATE_MESSAGE, _worker_state(final=False))


def _on_stop_request(environment: Environment, msg: Any, **_: object) -> None:
    """On a worker: the master is about to quit; stop the users now (they finish their
    sessions), so that the last report reaches it."""
    if environment.runner is not None:
        environment.runner.stop()


@events.init.add_listener
def _on_init(environment: Environment, **_: object) -> None:
    # gevent's loop keeps its idea of "now" from its last turn, before Locust's start-up
    # blocked it for a second or more; --run-time's timer, set from it, would fire that
    # much early. Refresh it.
    gevent.get_hub().loop.update_now()
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(STATE_MESSAGE, _on_worker_state)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(STOP_MESSAGE, _on_stop_request, concurrent=True)
    if environment.web_ui is None:
        return
    web_ui = environment.web_ui
    web_ui.template_args["extendedTabs"] = [{"title": "Session sharing", "key": "sharing"}]
    columns = ("user", "sessions", "processes", "hosts", "requests", "servers")
    web_ui.template_args["extendedTables"] = [
        {"key": "sharing", "structure": [{"key": c, "title": c} for c in columns]}
    ]

    @web_ui.app.route("/sharing")
    @web_ui.auth_required_if_enabled
    def sharing() -> dict[str, object]:
        return sharing_report()

    @web_ui.app.after_request
    def add_sharing(response: Any) -> Any:
        from flask import request

        if request.path == "/stats/requests" and response.is_json:
            rows = [
                {
                    **row.to_json(),
                    "servers": ", ".join(f"{p}: {n}" for p, n in row.by_process.items()),
                }
                for row in MATRIX.rows()
            ]
            rows = [{k: v for k, v in row.items() if k in columns} for row in rows]
            extended = [{"key": "sharing", "data": rows}]
            response.set_data(json.dumps({**response.get_json(), "extended_stats": extended}))
        elif request.path == "/stats/report" and response.mimetype == "text/html":
            response.set_data(
                response.get_data(as_text=True).replace("</body>", report_html() + "</body>", 1)
            )
        return response


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: object) -> None:
    if isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_send_states, environment)
        return
    _worker_states.clear()
    options = environment.parsed_options
    if (
        options
        and options.headless
        and options.progress != "off"
        and not isinstance(environment.runner, WorkerRunner)
    ):
        gevent.spawn(
            _progress, environment, redraw=options.progress == "auto" and sys.stderr.isatty()
        )


def _progress(environment: Environment, *, redraw: bool) -> None:
    """A live progress line on stderr until the run stops."""
    started = time.monotonic()
    runner = environment.runner
    while runner is not None and runner.state not in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
        gevent.sleep(1.0 if redraw else 3.0)
        total = runner.stats.total
        summary = MATRIX.summary()
        line = (
            f"{time.monotonic() - started:5.0f}s  users {runner.user_count}"
            f"  requests {total.num_requests:,}"
            f"  {total.current_rps:.0f}/s  failures {total.num_failures:,}"
            f"  p50 {total.get_current_response_time_percentile(0.5) or 0:.0f} ms"
            f"  p95 {total.get_current_response_time_percentile(0.95) or 0:.0f} ms"
            f"  shared {summary['users_shared']}/{summary['users']} users"
        )
        sys.stderr.write(f"\r\x1b[K{line}" if redraw else line + "\n")
        sys.stderr.flush()
    if redraw:
        sys.stderr.write("\n")


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: object) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(STATE_MESSAGE, _worker_state(final=True))
    elif isinstance(runner, MasterRunner) and _worker_states:
        # A headless master quits without stopping its workers first, and would not hear
        # their last reports: ask them to stop, and wait for the reports (bounded).
        if not all(state["final"] for state in _worker_states.values()):
            runner.send_message(STOP_MESSAGE)
        deadline = time.monotonic() + environment.stop_timeout + 5
        while time.monotonic() < deadline and not all(
            state["final"] for state in _worker_states.values()
        ):
            gevent.sleep(0.1)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: object) -> None:
    """The end of the run (Locust has written its ``--html`` report by now): print the
    matrix and the checks, write the JSON, add both to the HTML report, set the exit code."""
    if isinstance(environment.runner, WorkerRunner):
        return
    report = MATRIX.render_text() + "\n\n" + render_violations_text(VIOLATIONS)
    if isinstance(environment.runner, MasterRunner):
        finals = sum(1 for state in _worker_states.values() if state["final"])
        if finals < len(_worker_states):
            report += (
                f"\n  ({len(_worker_states) - finals} of {len(_worker_states)} workers sent no "
                f"last report: up to {STATE_EVERY:g} s of theirs may be missing here)"
            )
    print("\n" + report + "\n", flush=True)
    options = environment.parsed_options
    if options and options.sharing_json:
        path = Path(options.sharing_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sharing_report(), indent=2) + "\n")
        print(f"Sharing matrix and checks: {path}", flush=True)
    if options and options.require_sharing and not MATRIX.summary()["users_shared"]:
        print("FAIL: no user was served by more than one process (--require-sharing)", flush=True)
        environment.process_exit_code = 1
    html_file = getattr(options, "html_file", None)
    if html_file and Path(html_file).is_file():
        page = Path(html_file).read_text(encoding="utf-8")
        Path(html_file).write_text(
            page.replace("</body>", report_html() + "</body>", 1), encoding="utf-8"
        )
