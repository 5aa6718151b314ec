"""Turn the measurements into Markdown tables: printed, and written to PERFORMANCE.md.

Only the section between :data:`BEGIN` and :data:`END` is generated; everything else
in the file (the hand-written analysis) is kept as it is when the file is rewritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.context import Summary
from bench.login_storm import StormStats
from bench.memory import RSS_TARGET_MB, MemorySnapshot
from bench.on_cluster import WITHIN, OnCluster
from bench.options import Options
from bench.roundtrips import RoundTrips, mix_text
from bench.session_cost import HOME_TARGET, WHOAMI_TARGET, SessionCost
from bench.storm import LOGIN_RATE_TARGET, P99_FACTOR_TARGET, Storm, StormRound
from bench.via_nginx import ViaNginx
from bench.wrk import WrkResult

BEGIN = "<!-- BEGIN GENERATED SECTION: written by `python -m bench`; edits here are lost -->"
END = "<!-- END GENERATED SECTION -->"
ANALYSIS_STUB = """
## Analysis

(Written by hand after a full run: where the time goes, what the profile shows, what
was tried.)
"""


@dataclass
class Results:
    opts: Options
    machine: list[tuple[str, str]]
    started: dt.datetime
    session: SessionCost | None = None
    roundtrips: RoundTrips | None = None
    storm: Storm | None = None
    memory: list[MemorySnapshot] = field(default_factory=list)
    nginx: ViaNginx | None = None
    cluster: OnCluster | None = None
    notes: list[str] = field(default_factory=list)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, numeric: bool = True) -> str:
    """A Markdown table, padded to line up as plain text; columns after the first are
    right-aligned when ``numeric``."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    right = [numeric and i > 0 for i in range(len(header))]

    def line(row: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else ("-" * (w + 2))
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _f(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _rounds(summaries: Sequence[Summary]) -> str:
    return "; ".join(
        f"{sm.label} " + ", ".join(f"{_f(m.result.rps, 0)} ({m.split})" for m in sm.runs)
        for sm in summaries
    )


def _session(res: Results, s: SessionCost) -> list[str]:
    o = res.opts
    rows = []
    for summary, target in ((s.hello, None), (s.whoami, WHOAMI_TARGET), (s.home, HOME_TARGET)):
        ratio = s.ratio(summary)
        verdict = "reference" if target is None else f"≥ {target} {met(ratio >= target)}"
        rows.append(
            [
                summary.label,
                _f(summary.rps, 0),
                _f(ratio),
                verdict,
                _f(summary.p50_ms),
                _f(summary.p99_ms),
                _f(summary.server_us, 0),
                _f(summary.redis_us, 0),
                _f(summary.redis_trips),
                _f(summary.wrk_us, 0),
                _f(summary.other_cpu_pct, 0),
                summary.errors,
            ]
        )
    out = [
        f"### 1. Session-layer cost ({s.connections} connections, median of {o.rounds} x "
        f"{o.duration:g} s)",
        "",
        table(
            [
                "System",
                "req/s",
                "ratio",
                "target",
                "p50 ms",
                "p99 ms",
                "server CPU µs/req",
                "Redis CPU µs/req",
                "Redis round trips/req",
                "wrk CPU µs/req",
                "other CPU %",
                "errors",
            ],
            rows,
        ),
        "",
        f"Ratios: **/whoami {_f(s.ratio(s.whoami))}** (target {WHOAMI_TARGET}: "
        f"{met(s.ratio(s.whoami) >= WHOAMI_TARGET)}), **/home {_f(s.ratio(s.home))}** "
        f"(target {HOME_TARGET}: {met(s.ratio(s.home) >= HOME_TARGET)}).",
        "",
        "Per round, req/s (how the worker processes shared the CPU, %): "
        + _rounds((s.hello, s.whoami, s.home))
        + ".",
        "",
        "Ratios are medians, over the rounds, of each run's rate over the mean of the "
        "hello world's runs just before and just after it (the hello world runs once more "
        "after the last round): the machine's speed drifts by up to 10% within seconds. "
        "Server CPU is the user + system time of the server's processes (from "
        "`/proc/<pid>/stat`) divided by the requests served; Redis CPU likewise for "
        "`redis-server`. Redis round trips per request under this load come from Redis's "
        "`total_reads_processed`: below the commands per request (section 2) when several "
        "requests' commands travel in one write. wrk CPU is the load generator's own. "
        "Other CPU is the rest of the "
        "machine's busy time during the run (`/proc/stat`), in % of one core: other "
        "processes and kernel work charged to none (loopback networking); a high value "
        "means the run was disturbed.",
        "",
        f"#### {s.high_connections} connections, one run of {o.duration:g} s each",
        "",
        table(
            ["Route", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors", "zero errors"],
            [
                [
                    m.label,
                    _f(m.result.rps, 0),
                    _f(m.result.p50_ms),
                    _f(m.result.p99_ms),
                    _non2xx(m.result),
                    m.result.socket_errors,
                    met(m.result.non2xx == 0 and m.result.socket_errors == 0),
                ]
                for m in s.high
            ],
        ),
    ]
    return out


def _roundtrips(rt: RoundTrips) -> list[str]:
    rows = [
        [
            r.label,
            r.requests,
            _f(r.redis_round_trips),
            _f(r.redis_commands),
            mix_text(r.redis_mix),
            _f(r.mysql["Questions"]),
            _f(r.mysql["Com_select"]),
            _f(r.mysql["Com_insert"]),
            _f(r.mysql["Com_update"] + r.mysql["Com_delete"]),
        ]
        for r in rt.routes
    ]
    other = rt.mysql_background.get("Questions", 0.0)
    bg = (
        "no other client sent MariaDB statements meanwhile (measured over 2 s before), so "
        "the MariaDB figures are exact"
        if other < 0.05
        else f"other clients sent about {other:.1f} MariaDB statements/s (measured before the "
        "run); that background has been subtracted, so the MariaDB figures are estimates"
    )
    return [
        "### 2. Round trips per request",
        "",
        table(
            [
                "Route",
                "requests",
                "Redis round trips",
                "Redis commands",
                "Redis commands (per request)",
                "MariaDB statements",
                "SELECT",
                "INSERT",
                "UPDATE+DELETE",
            ],
            rows,
        ),
        "",
        "Redis commands: every command on the benchmark's database that `MONITOR` reported "
        "between two markers, except those run inside Lua scripts (`[db lua]`). Redis round "
        "trips: the delta of Redis's own `total_reads_processed` (one per batch a client "
        "sends: a pipeline is one), less the background of other clients "
        f"({rt.redis_background:.1f} reads/s, measured over 2 s before). Requests are "
        "sent one at a time on one connection, after warm-up connections until every worker "
        "had served two (so every worker has its pooled connections and scripts). "
        "MariaDB: deltas of "
        f"`Questions` and `Com_*` from `SHOW GLOBAL STATUS`; {bg}. Sign-ins are fewer "
        "because each costs a bcrypt hash; their counts do not depend on the number.",
    ]


def _p99(result: WrkResult) -> str:
    """p99 in ms, or a note when no request completed within the run."""
    return _f(result.p99_ms) if result.requests else "none completed"


def _non2xx(result: WrkResult) -> str:
    """``0``, or the count with the statuses, e.g. ``14 (503: 14)``."""
    if not result.non2xx:
        return str(result.non2xx or 0)
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(result.codes.items()))
    return f"{result.non2xx} ({codes})"


def _per_worker(served: dict[str, int]) -> str:
    """Answers per worker process (by ``X-Served-By``, in pid order), e.g. ``98/104``."""
    return "/".join(str(n) for _, n in sorted(served.items())) or "-"


def _failures(stats: StormStats) -> str:
    failures = stats.failures
    if not failures:
        return "0"
    codes = ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(failures.items()))
    return f"{sum(failures.values())} ({codes})"


def _storm_row(label: str, r: StormRound, storm: Storm) -> list[object]:
    factor = r.storm.p99_ms / r.calm.p99_ms if r.calm.p99_ms and r.storm.requests else 0.0
    return [
        label,
        _p99(r.calm),
        _p99(r.storm),
        _f(factor) if factor else "-",
        _f(r.storm.max_ms),
        f"{r.calm.requests}/{r.storm.requests}",
        _f(r.logins.rate),
        f"{r.logins.rate / storm.ceiling:.0%}",
        _failures(r.all_logins),
        _non2xx(r.storm),
        _per_worker(r.all_logins.per_worker),
        _per_worker(r.storm.served),
        _f(r.other_cpu_pct, 0),
    ]


def _storm(res: Results, st: Storm) -> list[str]:
    o = res.opts
    rows = [_storm_row(f"round {i + 1}", r, st) for i, r in enumerate(st.rounds)]
    calm, stormy = st.median("calm"), st.median("storm")
    factor = stormy / calm if calm else 0.0
    share = st.login_rate / st.ceiling
    rows.append(
        [
            "**median**",
            _f(calm),
            _f(stormy),
            _f(factor),
            "",
            "",
            _f(st.login_rate),
            f"{share:.0%}",
            "",
            "",
            "",
            "",
            "",
        ]
    )
    if st.on_loop is not None:
        rows.append(_storm_row("`--bcrypt_on_event_loop`", st.on_loop, st))
    return [
        f"### 3. Login storm ({o.storm_clients} clients signing in, bcrypt cost {o.bcrypt_rounds})",
        "",
        table(
            [
                "Run",
                "p99 calm ms",
                "p99 storm ms",
                "storm/calm",
                "max storm ms",
                "probes calm/storm",
                "sign-ins/s",
                "of ceiling",
                "failed sign-ins",
                "probe non-2xx",
                "sign-ins per worker",
                "probes per worker",
                "other CPU %",
            ],
            rows,
        ),
        "",
        f"One bcrypt check at cost {o.bcrypt_rounds} takes {st.hash_s * 1000:.0f} ms here "
        f"(timed in-process), so {st.cores} cores allow at most **{st.ceiling:.2f} sign-ins/s**."
        f" p99 of `GET /whoami` under the storm: {factor:.2f}x calm (target ≤ "
        f"{P99_FACTOR_TARGET:g}x: {met(factor <= P99_FACTOR_TARGET)}); sign-ins: "
        f"{share:.0%} of the ceiling (target ≥ {LOGIN_RATE_TARGET:.0%}: "
        f"{met(share >= LOGIN_RATE_TARGET)}).",
        "",
        f"The probe: {o.probe_connections} connections of signed-in `GET /whoami`, each "
        f"pausing {o.probe_delay_ms} ms between requests, for {o.duration:g} s, calm and "
        "then while the storm runs (it starts 2 s before the probe and stops starting "
        "sign-ins 2 s after; the server is then left to finish its queued sign-ins before the "
        "next calm run). The storm: asyncio clients, each sign-in on a new connection, so "
        "they spread over the workers. Sign-ins/s: 2xx answers that arrived while the probe "
        "ran; failed sign-ins and sign-ins per worker cover the whole storm. wrk reports the "
        "latency of completed requests only. Other CPU: the rest of the machine's busy time "
        "while the storm's probe ran (the bench's own sign-in clients excluded), in % of one "
        "core. The last row is the same storm against a "
        "server started with `--bcrypt_on_event_loop`.",
    ]


def _memory(snaps: list[MemorySnapshot]) -> list[str]:
    rows = [
        [
            s.label,
            ", ".join(_f(mb, 1) for _, mb in s.workers_mb),
            _f(s.parent_mb, 1),
            f"< {RSS_TARGET_MB:g} {met(s.met)}",
        ]
        for s in snaps
    ]
    return [
        "### 4. Memory (VmRSS from `/proc/<pid>/status`)",
        "",
        table(["Server, when", "each worker MiB", "supervisor MiB", "target"], rows),
    ]


def _nginx(res: Results, n: ViaNginx) -> list[str]:
    o = res.opts
    rows = [
        [
            s.label,
            _f(s.rps, 0),
            _f(n.ratio(s)),
            _f(n.ratio(s, n.hello)),
            _f(s.p50_ms),
            _f(s.p99_ms),
            _f(s.server_us, 0),
            _f(s.other_cpu_pct, 0),
            s.errors,
        ]
        for s in (n.hello_direct, n.hello, n.whoami, n.home)
    ]
    return [
        f"### 5. Through nginx ({o.connections} connections, median of {o.rounds} x "
        f"{o.duration:g} s)",
        "",
        table(
            [
                "System",
                "req/s",
                "ratio to direct hello",
                "ratio to hello via nginx",
                "p50 ms",
                "p99 ms",
                "nginx + server CPU µs/req",
                "other CPU %",
                "errors",
            ],
            rows,
        ),
        "",
        "Per round, req/s (how the app's or hello world's workers shared the CPU, %): "
        + _rounds((n.hello_direct, n.hello, n.whoami, n.home))
        + ".",
        "",
        "nginx runs the project's config (`deploy/nginx.conf` rendered by "
        "`deploy/render-nginx-conf.py`: keep-alive upstream, access log buffered, gzip), "
        "on a free port in a temporary directory; the app behind it runs with `--xheaders`.",
    ]


def _cluster(res: Results, c: OnCluster) -> list[str]:
    o = res.opts
    pairs = ((c.cluster_whoami, c.whoami), (c.cluster_home, c.home))
    rows = []
    for summary in (c.hello, c.whoami, c.home, c.cluster_whoami, c.cluster_home):
        single = next((s for cl, s in pairs if cl is summary), None)
        relative = c.relative(summary, single) if single else None
        rows.append(
            [
                summary.label,
                _f(summary.rps, 0),
                _f(c.ratio(summary)),
                "-" if relative is None else _f(relative),
                "-" if relative is None else f"≥ {WITHIN} {met(relative >= WITHIN)}",
                _f(summary.p50_ms),
                _f(summary.p99_ms),
                _f(summary.server_us, 0),
                _f(summary.wrk_us, 0),
                _f(summary.other_cpu_pct, 0),
                summary.errors,
            ]
        )
    return [
        f"### 6. The session store on a Redis Cluster ({o.connections} connections, median "
        f"of {o.rounds} x {o.duration:g} s)",
        "",
        table(
            [
                "System",
                "req/s",
                "ratio",
                "Cluster / single",
                "target",
                "p50 ms",
                "p99 ms",
                "server CPU µs/req",
                "wrk CPU µs/req",
                "other CPU %",
                "errors",
            ],
            rows,
        ),
        "",
        "Per round, req/s (how the worker processes shared the CPU, %): "
        + _rounds((c.hello, c.whoami, c.home, c.cluster_whoami, c.cluster_home))
        + ".",
        "",
        f"The Cluster: {c.nodes} private `redis-server` nodes (3 primaries, 3 replicas) on "
        "loopback ports, started by `scripts/redis_topology.py`; its app is started as the "
        "first but for `--redis_url=redis+cluster://...` and signs up users of its own. "
        "The five systems alternate in the same rounds; ratios are medians of each "
        "run's rate over the mean of the hello world's runs around it, and Cluster / "
        "single is the Cluster's ratio "
        "over the single server's. Redis CPU and round trips are read from the single "
        "server only, so they are left out here; the Cluster nodes' CPU counts in other "
        "CPU.",
    ]


DISTURBED_PCT = 20.0


def _disturbed(res: Results) -> list[str]:
    """A note for each run during which something else kept the machine busy."""
    runs: list[tuple[str, float]] = []
    summaries: list[Summary] = []
    if res.session:
        summaries += [res.session.hello, res.session.whoami, res.session.home]
        runs += [
            (f"{m.label} ({res.session.high_connections} connections)", m.other_cpu_pct)
            for m in res.session.high
        ]
    if res.nginx:
        summaries += [res.nginx.hello_direct, res.nginx.hello, res.nginx.whoami, res.nginx.home]
    if res.cluster:
        c = res.cluster
        summaries += [c.hello, c.whoami, c.home, c.cluster_whoami, c.cluster_home]
    for s in summaries:
        runs += [(f"{s.label}, round {i + 1}", m.other_cpu_pct) for i, m in enumerate(s.runs)]
    if res.storm:
        runs += [
            (f"login storm, round {i + 1}", r.other_cpu_pct) for i, r in enumerate(res.storm.rounds)
        ]
    bad = [f"{label} ({pct:.0f}%)" for label, pct in runs if pct > DISTURBED_PCT]
    if not bad:
        return []
    return [
        f"Disturbed runs (other busy CPU above {DISTURBED_PCT:g}% of a core while they "
        f"ran): {'; '.join(bad)}. Run again on a quiet machine before trusting them."
    ]


def generated(res: Results) -> str:
    o = res.opts
    access = "on" if o.access_log else "off"
    lines = [
        BEGIN,
        "",
        f"Measured {res.started:%Y-%m-%d %H:%M} with:",
        "",
        "```",
        o.command,
        "```",
        "",
        f"Every server runs `--processes={o.processes}` with the access log **{access}** "
        f"(`--access_log={str(o.access_log).lower()}` for the app and the hello world alike); "
        f"the app runs with its metrics **{'on' if o.metrics else 'off'}** "
        f"(`--metrics={str(o.metrics).lower()}`), bcrypt cost {o.bcrypt_rounds}, Redis "
        f"`{o.redis_url}` and MariaDB "
        f"database `{o.mysql_url.rsplit('/', 1)[-1]}`"
        + (f", and the extra options `{' '.join(o.app_args)}`" if o.app_args else "")
        + ". The load generator is wrk, one thread per connection, each connection "
        f"keeping one of {o.users} signed-in users' cookies for the whole run (as a browser "
        "keeps its user on its connection; with more connections than users, several "
        "connections share one); the hello world receives the same request headers in the "
        "same way. Systems are alternated round by round "
        "after a warm-up of "
        f"{o.warmup:g} s each; figures are medians.",
        "",
    ]
    if res.session:
        lines += [*_session(res, res.session), ""]
    if res.roundtrips:
        lines += [*_roundtrips(res.roundtrips), ""]
    if res.storm:
        lines += [*_storm(res, res.storm), ""]
    if res.memory:
        lines += [*_memory(res.memory), ""]
    if res.nginx:
        lines += [*_nginx(res, res.nginx), ""]
    elif o.skip_nginx:
        lines += ["### 5. Through nginx", "", "Skipped (`--skip-nginx`).", ""]
    if res.cluster:
        lines += [*_cluster(res, res.cluster), ""]
    lines += ["### Machine", "", table(["", ""], res.machine, numeric=False), ""]
    notes = [*res.notes, *_disturbed(res)]
    if notes:
        lines += ["### Notes", "", *(f"- {n}" for n in notes), ""]
    lines.append(END)
    return "\n".join(lines)


def write(path: Path, section: str) -> None:
    """Replace the generated section of ``path`` (create the file when missing)."""
    if path.exists():
        text = path.read_text()
        start, end = text.find(BEGIN), text.find(END)
        if start >= 0 and end > start:
            text = text[:start] + section + text[end + len(END) :]
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
    else:
        text = (
            "# Performance\n\nFigures from the benchmark (`make bench`, i.e. "
            "`python -m bench`): the session layer against a bare Tornado hello-world, "
            "round trips per route, a login storm, memory, and nginx in front.\n\n"
            + section
            + "\n"
            + ANALYSIS_STUB
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
