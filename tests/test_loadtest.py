"""The load test: a short real run against two forked processes, and its checker.

The end-to-end test runs ``python -m loadtest`` as a user would, against
``server.py --processes=2``, and reads its JSON summary and HTML report. The other tests
feed the checking and reporting code a fabricated history, to show that every kind of
violation is caught and reported, and that a correct history passes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtest.checks import UserLedger, ViolationLog
from loadtest.config import Config
from loadtest.report_html import render_html
from loadtest.report_json import summary
from loadtest.report_text import render_text
from loadtest.result import RunResult, UserSummary
from loadtest.sharing import SharingLog
from loadtest.stats import Histogram, RunStats
from loadtest.verdict import evaluate
from tests.support.server_process import REPO_ROOT

USERS = 8


def test_load_run_shares_sessions_across_processes(spawn_server, tmp_path):
    server = spawn_server(processes=2)
    out_json, out_html = tmp_path / "summary.json", tmp_path / "report.html"
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadtest",
            f"--target={server.url}", f"--users={USERS}", "--duration=6", "--ramp=1",
            "--think=0.05", "--actions=8", "--new-connection-every=2", "--seed=1",
            "--require-sharing", "--progress=lines",
            f"--json={out_json}", f"--report={out_html}",
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Result: PASS" in proc.stdout

    result = json.loads(out_json.read_text())
    assert result["passed"] and result["violations"]["total"] == 0, output
    assert result["errors"] == 0 and result["unfinished_users"] == 0
    checks = result["checks"]
    assert checks["views"] > 0 and checks["fetches"] > 0 and checks["statuses"] > 0
    assert checks["logout"] > 0 and checks["signed-in"] > 100
    routes = result["routes"]
    for route in ("POST /register", "POST /login", "GET /home", "POST /addStatus",
                  "GET /fetchStatus", "GET /whoami", "POST /logout"):  # fmt: skip
        assert routes[route]["requests"] > 0, route

    # Both worker processes (never the parent) served the signed-in users, and the
    # matrix shows most users, and single sessions, served by both of them.
    sharing = result["sharing"]
    assert len(sharing["processes"]) == 2, sharing["processes"]
    assert str(server.pid) not in {p.rpartition(":")[2] for p in sharing["processes"]}
    assert sharing["users_shared"] >= USERS // 2, sharing["users_by_process_count"]
    assert sharing["sessions_shared"] >= 1
    assert len(sharing["users"]) == USERS
    assert "users were served by 2 processes" in proc.stdout

    html = out_html.read_text()
    assert html.count("<svg") >= 3 and "Throughput over time" in html
    assert "Latency over time" in html and "Signed-in requests per user" in html
    assert "<script" not in html and "http://www.w3.org/2000/svg" in html
    assert "src=" not in html and "<link" not in html


# --- the checker, fed a fabricated history ---------------------------------------------


def _ledger(log: ViolationLog) -> UserLedger:
    ledger = UserLedger(0, "Ann", log)
    ledger.sign_in()
    return ledger


def test_correct_history_has_no_violation():
    log = ViolationLog()
    ledger = _ledger(log)
    assert ledger.answer("GET /home", 200, None, 1.0)
    ledger.home("GET /home", 1, 1.0)
    ledger.home_unknown()  # a timed-out visit may or may not have counted...
    ledger.home("GET /home", 3, 2.0)  # ...so 2 or 3 are both right here
    ledger.posted("one")
    ledger.maybe_posted("lost in transit")  # may be absent
    ledger.posted("two")
    ledger.fetched("GET /fetchStatus", ["two", "one"], 1000, 3.0)
    ledger.identity("GET /whoami", "Ann", 7, 3.5)
    ledger.sign_out()
    ledger.after_logout("GET /home (old cookie)", 401, None, 4.0)
    ledger.sign_in()  # a new session starts counting from zero
    ledger.home("GET /home", 1, 5.0)
    assert log.total == 0, [v.describe() for v in log.examples]
    assert log.checks["views"] == 3 and log.checks["statuses"] == 2


def test_checker_reports_every_violation():
    log = ViolationLog()
    ledger = _ledger(log)
    ledger.home("GET /home", 1, 1.0)
    ledger.home("GET /home", 5, 2.0)  # two visits, views 5
    ledger.posted("kept")
    ledger.posted("lost")
    ledger.posted("twice")
    ledger.fetched("GET /fetchStatus", ["twice", "twice", "kept", "never posted"], 1000, 3.0)
    ledger.fetched("GET /fetchStatus", ["kept", "twice"], 1000, 3.5)  # old first
    ledger.identity("GET /whoami", "Bob", 7, 3.6)
    assert not ledger.answer("GET /home", 401, None, 4.0)
    assert not ledger.signed_in
    ledger.sign_in()
    assert not ledger.answer("POST /addStatus", 303, "/", 5.0)  # HTML-style sign-out
    ledger.after_logout("GET /home (old cookie)", 200, None, 6.0)

    kinds = dict(log.counts)
    assert kinds == {
        "views": 1,
        "status-missing": 1,
        "status-duplicate": 1,
        "status-unexpected": 1,
        "status-order": 1,
        "wrong-user": 1,
        "signed-out": 2,
        "logout": 1,
    }
    described = "\n".join(v.describe() for v in log.examples)
    assert "views is 5, expected 2" in described
    assert "'lost' was posted" in described and "'twice' appears 2 times" in described
    assert "answered 401 while signed in" in described
    assert "answered 303 (redirect to /) while signed in" in described

    # The verdict fails, and both reports list every violation.
    stats = RunStats()
    stats.record("GET /home", 1.0, 0.01, "200", False, "host:1")
    result = RunResult(
        config=Config(users=1, duration=1.0, report=None),
        run_id="test",
        started_at="2026-01-01T00:00:00+00:00",
        elapsed=1.0,
        stats=stats,
        sharing=SharingLog(1),
        violations=log,
        users=[UserSummary(0, "a@example.com", 2, 2, 3, True)],
    )
    verdict = evaluate(result)
    assert not verdict.passed and verdict.exit_code == 1
    assert "9 correctness violation(s), 0 allowed" in verdict.failures[0]
    text = render_text(result, verdict)
    html = render_html(result, verdict)
    for violation in log.examples:
        assert violation.describe() in text
    assert "Result: FAIL" in text and "FAIL" in html and "status-missing" in html
    assert summary(result, verdict)["violations"]["by_kind"]["views"] == 1


def test_errors_and_missing_sharing_fail_the_run():
    stats = RunStats()
    stats.record("GET /home", 1.0, 0.01, "200", False, "host:1")
    stats.record("GET /home", 1.1, 0.01, "ServerDisconnectedError", True)
    sharing = SharingLog(1)
    sharing.record(0, 1, "host:1")
    result = RunResult(
        config=Config(users=1, report=None, require_sharing=True),
        run_id="test",
        started_at="2026-01-01T00:00:00+00:00",
        elapsed=1.0,
        stats=stats,
        sharing=sharing,
        violations=ViolationLog(),
    )
    failures = "\n".join(evaluate(result).failures)
    assert "1 of 2 requests failed" in failures and "ServerDisconnectedError" in failures
    assert "no session was served by more than one process" in failures


@pytest.mark.parametrize("q, expected", [(50, 0.500), (90, 0.900), (99, 0.990), (100, 1.0)])
def test_histogram_percentiles_within_one_percent(q, expected):
    histogram = Histogram()
    for ms in range(1, 1001):
        histogram.record(ms / 1000)
    assert histogram.percentile(q) == pytest.approx(expected, rel=0.01)
