"""The machine-readable summary (``--json``): the same facts as the text report."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.result import RunResult
from loadtest.stats import RouteStats
from loadtest.verdict import Verdict


def _route(route: RouteStats, elapsed: float) -> dict[str, object]:
    return {
        "requests": route.requests,
        "errors": route.errors,
        "rps": route.requests / elapsed if elapsed else 0.0,
        "latency_s": route.latency.summary(),
        "answers": dict(sorted(route.statuses.items())),
    }


def summary(result: RunResult, verdict: Verdict) -> dict[str, object]:
    """Everything a script needs to judge or plot a run, as plain JSON data."""
    stats = result.stats
    sharing = result.sharing.summary()
    return {
        "passed": verdict.passed,
        "exit_code": verdict.exit_code,
        "failures": verdict.failures,
        "run_id": result.run_id,
        "started_at": result.started_at,
        "elapsed_s": result.elapsed,
        "interrupted": result.interrupted,
        "config": result.config.to_json(),
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": result.error_rate,
        "error_kinds": dict(stats.error_kinds.most_common()),
        "throughput_rps": result.throughput,
        "connections_opened": stats.connections_opened,
        "latency_s": stats.overall.latency.summary(),
        "routes": {
            name: _route(stats.routes[name], result.elapsed) for name in stats.route_names()
        },
        "timeline": [
            {
                "t": t,
                "requests": slot.requests,
                "errors": slot.errors,
                "p50_s": slot.latency.percentile(50),
                "p99_s": slot.latency.percentile(99),
            }
            for t, slot in stats.timeline.points(until=result.elapsed)
        ],
        "sharing": {
            "headline": sharing.headline(),
            "processes": sharing.processes,
            "processes_seen_overall": dict(stats.served_by),
            "users_shared": sharing.users_shared,
            "users_by_process_count": sharing.users_by_process_count,
            "sessions": sharing.sessions,
            "sessions_shared": sharing.sessions_shared,
            "sessions_by_process_count": sharing.sessions_by_process_count,
            "users": result.user_summaries_json(),
        },
        "checks": dict(result.violations.checks),
        "violations": {
            "total": result.violations.total,
            "by_kind": dict(result.violations.counts),
            "listed": [v.to_json() for v in result.violations.examples],
        },
        "unfinished_users": result.unfinished,
        "crashes": result.crashes,
    }


def write_json(path: Path, result: RunResult, verdict: Verdict) -> None:
    """Write :func:`summary` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary(result, verdict), indent=2, ensure_ascii=False) + "\n")
