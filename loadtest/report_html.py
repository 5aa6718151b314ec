"""The HTML report: one self-contained file with inline SVG charts and plain tables.

It shows the verdict first, then throughput and latency over time, the per-route table,
the session-sharing matrix as a heat map (users x processes, signed-in requests per
cell) and the correctness checks. No scripts, stylesheets or fonts are loaded from
anywhere: the file can be mailed, archived or opened offline.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from loadtest.checks import CHECK_NAMES, VIOLATION_KINDS
from loadtest.fmt import format_ms, format_seconds
from loadtest.report_text import CHECK_VIOLATIONS
from loadtest.result import RunResult
from loadtest.sharing import process_labels
from loadtest.stats import Interval
from loadtest.svg import Series, heatmap, line_chart
from loadtest.verdict import Verdict

MAX_POINTS = 300  # a longer run is drawn with several seconds per point

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222;padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
.verdict{padding:10px 14px;border-radius:6px;font-weight:bold;font-size:18px}
.pass{background:#e6f4ea;color:#1e6b34}.fail{background:#fce8e6;color:#a50e0e}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.tile b{display:block;font-size:20px}.tile span{color:#666;font-size:12px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}
.bad{color:#a50e0e;font-weight:bold}.muted{color:#777}
.bar{display:inline-block;height:10px;background:#08519c;vertical-align:middle}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
svg{display:block;margin:10px 0;max-width:100%;height:auto}
li{margin:2px 0}
"""


def _merge(slots: list[tuple[float, Interval]], size: int) -> list[tuple[float, Interval]]:
    """Group consecutive intervals by ``size`` so a long run keeps a readable chart."""
    if size <= 1:
        return slots
    merged = []
    for i in range(0, len(slots), size):
        group = Interval()
        for _, slot in slots[i : i + size]:
            group.requests += slot.requests
            group.errors += slot.errors
            group.latency.merge(slot.latency)
        merged.append((slots[i][0], group))
    return merged


def _charts(result: RunResult) -> str:
    timeline = result.stats.timeline
    slots = timeline.points(until=result.elapsed)
    size = max(1, math.ceil(len(slots) / MAX_POINTS))
    width = timeline.interval * size
    points = _merge(slots, size)
    # The last interval is usually cut short by the end of the run: rate it over the time
    # it covers, or leave it out when that is too short to mean anything.
    rated = [
        (t + span / 2, slot, span)
        for t, slot in points
        if (span := min(width, result.elapsed - t)) >= width / 2
    ]
    mid = [(t, s) for t, s, _ in rated]
    throughput = line_chart(
        [
            Series("requests/s", "#08519c", [(t, s.requests / w) for t, s, w in rated], True),
            Series("errors/s", "#d62728", [(t, s.errors / w) for t, s, w in rated]),
        ],
        title="Throughput over time",
        y_label="per second",
    )

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1e3

    latency = line_chart(
        [
            Series("p50", "#2ca02c", [(t, ms(s.latency.percentile(50))) for t, s in mid]),
            Series("p99", "#ff7f0e", [(t, ms(s.latency.percentile(99))) for t, s in mid]),
        ],
        title="Latency over time (all routes)",
        y_label="milliseconds",
    )
    note = f"<p class='muted'>Each point covers {width:g} s.</p>" if size > 1 else ""
    return throughput + latency + note


def _tiles(result: RunResult) -> str:
    overall = result.stats.overall.latency
    summary = result.sharing.summary()
    tiles = [
        (f"{result.stats.requests:,}", "requests"),
        (f"{result.throughput:.1f}", "requests/s"),
        (f"{result.stats.errors:,}", "errors"),
        (f"{result.violations.total:,}", "correctness violations"),
        (format_seconds(overall.percentile(50)), "p50 latency"),
        (format_seconds(overall.percentile(99)), "p99 latency"),
        (f"{len(summary.processes)}", "processes (signed in)"),
        (f"{summary.users_shared}/{summary.users}", "users served by 2+ processes"),
    ]
    cells = "".join(f"<div class='tile'><b>{escape(v)}</b><span>{k}</span></div>" for v, k in tiles)
    return f"<div class='tiles'>{cells}</div>"


def _routes(result: RunResult) -> str:
    stats = result.stats
    elapsed = result.elapsed or 1.0
    rows = []
    for name in [*stats.route_names(), None]:
        route = stats.overall if name is None else stats.routes[name]
        s = route.latency.summary()
        answers = ", ".join(f"{k}&times;{n}" for k, n in sorted(route.statuses.items()))
        err = f"<td class='bad'>{route.errors:,}</td>" if route.errors else "<td>0</td>"
        label = "<b>all routes</b>" if name is None else f"<code>{escape(name)}</code>"
        rows.append(
            f"<tr><td>{label}</td><td>{route.requests:,}</td>{err}"
            f"<td>{route.requests / elapsed:.1f}</td><td>{format_ms(s['p50'])}</td>"
            f"<td>{format_ms(s['p90'])}</td><td>{format_ms(s['p99'])}</td>"
            f"<td>{format_ms(s['max'])}</td><td class='mono'>{answers}</td></tr>"
        )
    errors = ""
    if stats.error_kinds:
        items = "".join(
            f"<li><code>{escape(kind)}</code>: {n:,}</li>"
            for kind, n in stats.error_kinds.most_common()
        )
        errors = f"<h3>Errors</h3><ul>{items}</ul>"
    per_conn = stats.requests / stats.connections_opened if stats.connections_opened else 0.0
    return (
        "<table><tr><th>route</th><th>requests</th><th>errors</th><th>req/s</th>"
        "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>answers</th></tr>"
        + "".join(rows)
        + "</table>"
        + f"<p>{stats.connections_opened:,} TCP connections opened "
        f"({per_conn:.1f} requests per connection).</p>" + errors
    )


def _sharing(result: RunResult) -> str:
    summary = result.sharing.summary()
    processes = summary.processes
    labels = process_labels(processes)
    legend = ", ".join(
        f"<b>{labels[p]}</b> = <code>{escape(p)}</code> "
        f"({result.stats.served_by.get(p, 0):,} requests in all)"
        for p in processes
    )
    spread_rows = "".join(
        f"<tr><td>{count}</td><td>{n}</td><td><span class='bar' "
        f"style='width:{round(300 * n / max(1, summary.users))}px'></span></td></tr>"
        for count, n in summary.users_by_process_count.items()
    )
    parts = [
        f"<p><b>{escape(summary.headline())}</b>. "
        f"{summary.sessions_shared}/{summary.sessions} single sessions (sign-in to logout) "
        "were served by two or more processes.</p>",
        f"<p>Processes: {legend or 'none'}.</p>",
        "<table><tr><th>processes serving the user</th><th>users</th><th></th></tr>"
        f"{spread_rows}</table>",
    ]
    if processes:
        values = [
            [result.sharing.per_user[u.index].get(p, 0) for p in processes] for u in result.users
        ]
        parts.append(
            heatmap(
                [f"user {u.index}" for u in result.users],
                [labels[p] for p in processes],
                values,
                title="Signed-in requests per user and serving process",
                column_titles=processes,
            )
        )
    return "".join(parts)


def _checks(result: RunResult) -> str:
    log = result.violations
    rows = []
    for name, label in CHECK_NAMES.items():
        found = sum(log.counts.get(kind, 0) for kind in CHECK_VIOLATIONS[name])
        cls = " class='bad'" if found else ""
        rows.append(
            f"<tr><td>{label}</td><td>{log.checks.get(name, 0):,}</td><td{cls}>{found:,}</td></tr>"
        )
    bad = log.counts.get("bad-answer", 0)
    rows.append(
        f"<tr><td>malformed answers</td><td></td><td{' class=bad' if bad else ''}>{bad}</td></tr>"
    )
    table = "<table><tr><th>check</th><th>made</th><th>violations</th></tr>"
    table += "".join(rows) + "</table>"
    if not log.total:
        return table + "<p>No violations.</p>"
    kinds = "".join(
        f"<li><b>{escape(kind)}</b> ({n:,}): {escape(VIOLATION_KINDS.get(kind, kind))}</li>"
        for kind, n in log.counts.most_common()
    )
    items = "".join(f"<li class='mono'>{escape(v.describe())}</li>" for v in log.examples)
    more = ""
    if log.total > len(log.examples):
        more = f"<p>{len(log.examples)} of {log.total:,} listed.</p>"
    return f"{table}<h3>Violations</h3><ul>{kinds}</ul><ol>{items}</ol>{more}"


def render_html(result: RunResult, verdict: Verdict) -> str:
    """The complete report as one HTML document."""
    config = result.config
    if verdict.passed:
        banner = "<div class='verdict pass'>PASS: every check held</div>"
    else:
        reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.failures)
        banner = f"<div class='verdict fail'>FAIL</div><ul>{reasons}</ul>"
    every = config.new_connection_every
    params = (
        f"{config.users} users for {config.duration:g} s (ran {result.elapsed:.1f} s), "
        f"ramp {config.ramp:g} s, think time {config.think:g} s, about {config.actions} actions "
        f"per session, "
        + (f"a new connection every {every} request(s)" if every else "kept-alive connections")
        + (", stopped early by Ctrl-C" if result.interrupted else "")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Load test {escape(result.run_id)}: {"PASS" if verdict.passed else "FAIL"}</title>
<style>{STYLE}</style></head><body>
<h1>Load test of <code>{escape(config.target)}</code></h1>
<p class="muted">Run {escape(result.run_id)}, started {escape(result.started_at)}.
{escape(params)}.</p>
{banner}
{_tiles(result)}
<h2>Throughput and latency</h2>
{_charts(result)}
<h2>Requests by route</h2>
{_routes(result)}
<h2>Session sharing</h2>
<p>Each cell counts the requests a user made <em>while signed in</em> that a server process
answered. A user whose row has several coloured cells was served by several processes, and
its session (views counter, statuses, identity) stayed correct throughout unless a
violation below says otherwise.</p>
{_sharing(result)}
<h2>Correctness checks</h2>
{_checks(result)}
</body></html>
"""


def write_html(path: Path, result: RunResult, verdict: Verdict) -> None:
    """Write the report to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, verdict), encoding="utf-8")
