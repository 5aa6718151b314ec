"""The end-of-run report on stdout: routes, throughput, sharing matrix, checks, verdict."""

from __future__ import annotations

from loadtest.checks import CHECK_NAMES, VIOLATION_KINDS
from loadtest.fmt import format_ms
from loadtest.result import RunResult
from loadtest.sharing import process_labels
from loadtest.verdict import Verdict

# Which violation kinds each check can produce (for the "Checks" table).
CHECK_VIOLATIONS: dict[str, tuple[str, ...]] = {
    "signed-in": ("signed-out",),
    "views": ("views",),
    "fetches": ("status-duplicate", "status-unexpected", "status-order"),
    "statuses": ("status-missing",),
    "identity": ("wrong-user",),
    "logout": ("logout",),
}


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Columns aligned: the first ``left`` columns to the left, the others to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _routes(result: RunResult) -> list[str]:
    stats = result.stats
    elapsed = result.elapsed or 1.0
    header = ["route", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    rows = []
    for name in stats.route_names():
        route = stats.routes[name]
        summary = route.latency.summary()
        rows.append(
            [
                name,
                f"{route.requests:,}",
                f"{route.errors:,}",
                f"{route.requests / elapsed:.1f}",
                format_ms(summary["p50"]),
                format_ms(summary["p90"]),
                format_ms(summary["p99"]),
                format_ms(summary["max"]),
            ]
        )
    overall = stats.overall.latency.summary()
    rows.append(
        [
            "all routes",
            f"{stats.requests:,}",
            f"{stats.errors:,}",
            f"{result.throughput:.1f}",
            format_ms(overall["p50"]),
            format_ms(overall["p90"]),
            format_ms(overall["p99"]),
            format_ms(overall["max"]),
        ]
    )
    lines = ["Requests by route (latency in milliseconds)", *_table(header, rows)]
    peak = max((slot.requests for _, slot in stats.timeline.points()), default=0)
    per_connection = stats.requests / stats.connections_opened if stats.connections_opened else 0
    lines.append(
        f"Throughput: {result.throughput:.1f} requests/s overall, peak {peak:,} in one second; "
        f"{stats.connections_opened:,} connections opened ({per_connection:.1f} requests each)"
    )
    if stats.error_kinds:
        lines.append("Errors (route -> status or transport error):")
        lines += [f"  {n:6,}  {kind}" for kind, n in stats.error_kinds.most_common()]
    else:
        lines.append("Errors: none")
    return lines


def _sharing(result: RunResult, max_rows: int) -> list[str]:
    summary = result.sharing.summary()
    processes = summary.processes
    labels = process_labels(processes)
    all_processes = sorted(result.stats.served_by.items(), key=lambda kv: kv[0])
    lines = ["Session sharing (requests made while signed in, by serving process)"]
    overall = ", ".join(f"{name} ({n:,} requests)" for name, n in all_processes)
    lines.append(f"  processes seen overall ({len(all_processes)}): {overall or 'none'}")
    lines.append(f"  {summary.headline()}")
    spread = ", ".join(
        f"{n} user(s) by {count}" for count, n in summary.users_by_process_count.items()
    )
    lines.append(f"  users by number of processes: {spread or 'none'}")
    lines.append(
        f"  {summary.sessions_shared}/{summary.sessions} sessions (sign-in to logout) were "
        f"served by 2 or more processes"
    )
    if not processes:
        return lines
    lines.append("  " + ", ".join(f"{labels[name]} = {name}" for name in processes))
    header = ["user", "sessions", "processes", *(labels[name] for name in processes)]
    rows = []
    for user in result.users[:max_rows]:
        counter = result.sharing.per_user[user.index]
        rows.append(
            [
                str(user.index),
                str(user.sessions),
                str(len(counter)),
                *(f"{counter.get(name, 0):,}" for name in processes),
            ]
        )
    lines += _table(header, rows, left=0)
    if len(result.users) > max_rows:
        lines.append(
            f"  ({max_rows} of {len(result.users)} users shown; the HTML and JSON reports list all)"
        )
    return lines


def _checks(result: RunResult) -> list[str]:
    log = result.violations
    header = ["check", "made", "violations"]
    rows = []
    for name, label in CHECK_NAMES.items():
        found = sum(log.counts.get(kind, 0) for kind in CHECK_VIOLATIONS[name])
        rows.append([label, f"{log.checks.get(name, 0):,}", f"{found:,}"])
    rows.append(["malformed answers", "", f"{log.counts.get('bad-answer', 0):,}"])
    lines = ["Correctness checks", *_table(header, rows)]
    if not log.total:
        lines.append("Violations: none")
        return lines
    lines.append(f"Violations ({log.total:,}):")
    for kind, n in log.counts.most_common():
        lines.append(f"  {n:6,}  {kind}: {VIOLATION_KINDS.get(kind, kind)}")
    lines += [f"  - {v.describe()}" for v in log.examples]
    if log.total > len(log.examples):
        lines.append(f"  ({len(log.examples)} of {log.total:,} listed)")
    return lines


def render_text(result: RunResult, verdict: Verdict, max_users: int = 50) -> str:
    """The whole report as text (``max_users`` rows of the sharing matrix at most)."""
    config = result.config
    every = config.new_connection_every
    connections = f"new connection every {every} request(s)" if every else "keep-alive"
    lines = [
        f"Load test of {config.target}  (run {result.run_id}, started {result.started_at})",
        f"{config.users} users, {config.duration:g}s (ran {result.elapsed:.1f}s), "
        f"ramp {config.ramp:g}s, think {config.think:g}s, {connections}"
        + (", stopped early by Ctrl-C" if result.interrupted else ""),
        "",
        *_routes(result),
        "",
        *_sharing(result, max_users),
        "",
        *_checks(result),
        "",
    ]
    if verdict.passed:
        lines.append("Result: PASS")
    else:
        lines.append("Result: FAIL")
        lines += [f"  - {reason}" for reason in verdict.failures]
    return "\n".join(lines) + "\n"
