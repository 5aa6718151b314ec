"""The load test's checker and sharing matrix (``loadtest/checks.py``), fed fabricated histories."""

from __future__ import annotations

from loadtest.checks import SharingMatrix, UserLedger, ViolationLog, render_violations_text


def _ledger(log: ViolationLog) -> UserLedger:
    ledger = UserLedger(0, "Ann", log)
    ledger.sign_in()
    return ledger


def test_correct_history_has_no_violation():
    log = ViolationLog()
    ledger = _ledger(log)
    assert ledger.answer("/home", 200, None) == []
    assert ledger.home("/home", 1) == []
    ledger.home_unknown()  # a timed-out visit may or may not have counted...
    assert ledger.home("/home", 3) == []  # ...so 2 or 3 are both right here
    ledger.posted("one")
    ledger.posted("lost in transit", certain=False)  # may be absent
    ledger.posted("two")
    assert ledger.fetched("/fetchStatus", ["two", "one"], 1000) == []
    assert ledger.identity("/whoami", "Ann", 7) == []
    ledger.sign_out()
    assert ledger.after_logout("/home (old cookie)", 401, None) == []
    ledger.sign_in()  # a new session starts counting from zero
    assert ledger.home("/home", 1) == []
    assert log.total == 0, [v.describe() for v in log.examples]
    assert log.checks["views"] == 3 and log.checks["statuses"] == 2


def test_checker_reports_every_violation():
    log = ViolationLog()
    ledger = _ledger(log)
    ledger.home("/home", 1)
    [views] = ledger.home("/home", 5)  # two visits, views 5
    assert views.kind == "views" and "views is 5, expected 2" in views.detail
    for text in ("kept", "lost", "twice"):
        ledger.posted(text)
    found = ledger.fetched("/fetchStatus", ["twice", "twice", "kept", "never posted"], 1000)
    assert {v.kind for v in found} == {"status-duplicate", "status-unexpected", "status-missing"}
    [order] = ledger.fetched("/fetchStatus", ["kept", "twice", "lost"], 1000)  # old first
    assert order.kind == "status-order"
    assert [v.kind for v in ledger.identity("/whoami", "Bob", 7)] == ["wrong-user"]
    assert [v.kind for v in ledger.answer("/home", 401, None)] == ["signed-out"]
    assert not ledger.signed_in
    ledger.sign_in()
    [redirect] = ledger.answer("/addStatus", 303, "/")  # HTML-style sign-out
    assert "answered 303 (redirect to /) while signed in" in redirect.detail
    [logout] = ledger.after_logout("/home (old cookie)", 200, None)
    assert logout.kind == "logout"

    assert dict(log.counts) == {
        "views": 1,
        "status-missing": 1,
        "status-duplicate": 1,
        "status-unexpected": 1,
        "status-order": 1,
        "wrong-user": 1,
        "signed-out": 2,
        "logout": 1,
    }
    # A problem with one status is reported once, not again on every later fetch.
    assert ledger.fetched("/fetchStatus", ["twice", "twice", "kept"], 1000) == []
    text = render_violations_text(log)
    assert "violations: 9" in text
    for violation in log.examples:
        assert violation.describe() in text


def test_sharing_matrix_counts_processes_and_hosts():
    matrix = SharingMatrix()
    for served_by in ("a:10", "a:11", "a:10"):
        matrix.record(0, 1, served_by)
    matrix.record(0, 2, "a:10")
    matrix.record(1, 1, "b:10")
    matrix.record(1, 1, "a:11")
    summary = matrix.summary()
    assert summary["processes"] == ["a:10", "a:11", "b:10"] and summary["hosts"] == ["a", "b"]
    assert summary["users_shared"] == 2 and summary["users_on_several_hosts"] == 1
    assert summary["sessions"] == 3 and summary["sessions_shared"] == 2
    rows = {row.user: row for row in matrix.rows()}
    assert rows[0].by_process == {"a:10": 3, "a:11": 1} and rows[0].sessions == 2
    assert rows[1].hosts == 2
    assert "1/2 users were served by 2 or more hosts" in matrix.headline()
    text = matrix.render_text()
    assert "P1 = a:10, P2 = a:11, P3 = b:10" in text
