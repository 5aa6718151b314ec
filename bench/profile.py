"""Where a worker's CPU goes per request: ``python -m bench.profile`` (py-spy).

Starts the hello world and the app exactly as the benchmark does, signs users up, and
for each load (hello world, signed-in ``GET /whoami``, signed-in ``GET /home`` JSON)
runs wrk while ``py-spy record`` samples every worker. The samples are grouped by
what the worker was doing, attributing each one to the innermost frame that belongs
to a known part (redis-py, the ``sessions`` package, signed-cookie verification,
Tornado's HTTP layer, ...); standard-library frames (asyncio streams, hmac, re) count
for the part that called them. Each part's share of the samples, times the workers'
measured CPU per request (``/proc``), gives microseconds per request. Written to
``docs/PROFILE-<load>.txt`` (and, with ``--svg``, a flame graph per load).

py-spy is a profiling tool, not a dependency of the project: install it into the
virtual environment when profiling (``.venv/bin/pip install py-spy``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import options, wrk
from bench.cli import clean_stores
from bench.context import Context
from bench.procs import REPO_ROOT, Server
from bench.report import table
from bench.users import register_users

Frame = tuple[str, str]  # (function, file)
Rule = tuple[str, Callable[[str, str], bool]]

_RESPONSE = {
    "RequestHandler.finish",
    "RequestHandler.flush",
    "RequestHandler.write",
    "HTTP1Connection.write_headers",
    "HTTP1Connection.write",
    "HTTP1Connection.finish",
    "BaseIOStream.write",
    "BaseIOStream._handle_write",
    "IOStream.write_to_fd",
}
_HANDLER_SETUP = {
    "RequestHandler.__init__",
    "RequestHandler.clear",
    "RequestHandler.set_header",
    "RequestHandler._convert_header_value",
    "RequestHandler.set_default_headers",
    "BaseHandler.set_default_headers",
    "BaseHandler.initialize",
    "BaseHandler.res",
}
_REQUEST_PARSE = {
    "HTTP1Connection._parse_headers",
    "HTTP1Connection._read_message_inner",
    "HTTP1Connection._read_message",
    "HTTP1ServerConnection._server_request_loop",
    "_RoutingDelegate.headers_received",
    "_HandlerDelegate.headers_received",
}


def _in(names: set[str]) -> Callable[[str, str], bool]:
    return lambda fn, f: fn in names


#: Checked for each frame from the leaf up; the first frame that matches a rule decides,
#: so standard-library frames (asyncio transports, hmac, re) count for their caller.
RULES: list[Rule] = [
    (
        "signed cookie verification (get_signed_cookie, HMAC)",
        lambda fn, f: f == "tornado/web.py" and ("signed" in fn or "signature" in fn),
    ),
    ("XSRF token", lambda fn, f: "xsrf" in fn.lower()),
    (
        "Cookie header parsing",
        lambda fn, f: (
            f.startswith("http/cookies")
            or (f.startswith("tornado/") and "cookie" in fn.lower())
            or fn in ("cookie_value", "Inputs.get_cookie")
        ),
    ),
    ("logging", lambda fn, f: f.startswith("logging/")),
    (
        # orjson is one C call, which py-spy charges to the line calling it.
        "JSON encode/decode",
        lambda fn, f: f.startswith("json/") or fn == "Replies.write_json",
    ),
    ("Accept negotiation (handlers/negotiation.py)", lambda fn, f: f == "handlers/negotiation.py"),
    (
        "Redis client path (redis-py, sessions/autopipeline.py, socket I/O)",
        lambda fn, f: (
            f.startswith("redis/") or f in ("sessions/autopipeline.py", "storage/redis_client.py")
        ),
    ),
    ("sessions package (store, mixin, Session)", lambda fn, f: f.startswith("sessions/")),
    ("response: finish, write headers, socket send", _in(_RESPONSE)),
    ("handler setup: RequestHandler init, default + security headers", _in(_HANDLER_SETUP)),
    (
        "request parsing: start line, headers, HTTPServerRequest",
        lambda fn, f: f == "tornado/httputil.py" or fn in _REQUEST_PARSE,
    ),
    (
        "routing and dispatch (tornado.routing, _HandlerDelegate)",
        lambda fn, f: f == "tornado/routing.py" or fn.startswith("_HandlerDelegate"),
    ),
    (
        "app handler code (handlers/)",
        lambda fn, f: (
            f.startswith(("handlers/", "resources.py", "application.py"))
            or fn.startswith("HelloHandler")
        ),
    ),
    (
        "IOStream reads, epoll (un)registration",
        lambda fn, f: f in ("tornado/iostream.py", "tornado/platform/asyncio.py"),
    ),
    (
        "tornado other (RequestHandler._execute, gen, concurrent)",
        lambda fn, f: f.startswith("tornado/"),
    ),
]
LOOP = "asyncio event loop (select, callbacks, tasks)"


@dataclass(frozen=True)
class Profile:
    label: str
    samples: Counter[tuple[Frame, ...]]  # stack (root first) -> samples
    requests: int
    seconds: float
    cpu_s: float

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    @property
    def us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6 if self.requests else 0.0


def parse_raw(text: str) -> Counter[tuple[Frame, ...]]:
    """py-spy's ``--format raw`` (collapsed stacks) of the main thread, line numbers
    dropped. Other threads (the bcrypt pool, parked in its queue) are left out."""
    stacks: Counter[tuple[Frame, ...]] = Counter()
    for line in text.splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        frames = []
        for frame in stack_text.split(";"):
            fn, _, where = frame.rpartition(" (")
            path = where.rstrip(")").rsplit(":", 1)[0]
            path = path.split("site-packages/", 1)[-1]
            frames.append((fn or frame, path))
        if frames and frames[0][1] == "threading.py":
            continue
        stacks[tuple(frames)] += int(count)
    return stacks


def category(stack: tuple[Frame, ...]) -> str:
    for fn, path in reversed(stack):
        for name, rule in RULES:
            if rule(fn, path):
                return name
    return LOOP


def _label(frame: Frame) -> str:
    return f"{frame[0]} ({frame[1]})"


def render(p: Profile, top: int = 25) -> str:
    total = p.total or 1
    cats: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, n in p.samples.items():
        cats[category(stack)] += n
        if stack:
            self_time[_label(stack[-1])] += n
        for frame in {_label(f) for f in stack}:
            inclusive[frame] += n
    us = p.us_per_request

    def rows(counter: Counter[str], limit: int) -> list[list[object]]:
        return [
            [name, f"{n / total:.1%}", f"{n / total * us:.0f}"]
            for name, n in counter.most_common(limit)
        ]

    stacks: Counter[str] = Counter()
    for stack, n in p.samples.items():
        stacks[" ; ".join(_label(f) for f in stack[-8:])] += n
    lines = [
        f"Profile: {p.label}",
        f"{p.requests} requests in {p.seconds:.1f} s ({p.requests / p.seconds:.0f} req/s); "
        f"worker CPU {us:.0f} us per request (from /proc); {p.total} py-spy samples "
        "of the main thread while running (idle samples excluded).",
        "us/req = share of samples x worker CPU per request.",
        "",
        "Where the CPU goes (innermost known part of each sample's stack):",
        "",
        table(["part", "share", "us/req"], rows(cats, len(cats))),
        "",
        f"Top {top} functions by self time:",
        "",
        table(["function (file)", "share", "us/req"], rows(self_time, top)),
        "",
        f"Top {top} functions by inclusive time:",
        "",
        table(["function (file)", "share", "us/req"], rows(inclusive, top)),
        "",
        "Top 20 stacks (innermost 8 frames, root side cut):",
        "",
    ]
    for stack_text, n in stacks.most_common(20):
        lines.append(f"{n / total:6.1%}  {stack_text}")
    return "\n".join(lines) + "\n"


def folded(p: Profile) -> str:
    """The samples as folded stacks: ``frame;frame;... count`` per line, root first."""
    return "".join(
        ";".join(_label(f) for f in stack) + f" {n}\n" for stack, n in p.samples.most_common()
    )


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy (profiling only)")
    return found


def record(
    spy: str,
    ctx: Context,
    label: str,
    server: Server,
    load: wrk.Load,
    *,
    duration: float,
    rate: int,
    svg: Path | None,
) -> Profile:
    tmp = Path(tempfile.mkdtemp(dir=ctx.log_dir))
    cpu0 = server.cpu()
    run = wrk.WrkRun(
        ctx.wrk, server.url, load, connections=ctx.opts.connections, duration=duration + 2
    )
    try:
        time.sleep(1)
        fmt, suffix = ("flamegraph", "svg") if svg else ("raw", "txt")
        spies = [
            subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(duration)),
                    "--rate",
                    str(rate),
                    "--format",
                    fmt,
                    "-o",
                    str(tmp / f"{pid}.{suffix}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in server.workers()
        ]
        for s in spies:
            s.wait()
        result = run.result()
    finally:
        run.kill()
    cpu = server.cpu() - cpu0
    samples: Counter[tuple[Frame, ...]] = Counter()
    if svg:
        first = sorted(tmp.glob("*.svg"))[0]
        shutil.copy(first, svg)
    else:
        for raw in tmp.glob("*.txt"):
            samples.update(parse_raw(raw.read_text()))
    return Profile(label, samples, result.requests, result.duration_s, cpu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=10, help="seconds sampled per load")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--access-log", choices=("on", "off"), default="off")
    p.add_argument("--out-dir", default="docs", help="where PROFILE-<load>.txt go")
    p.add_argument("--svg", action="store_true", help="also write a flame graph per load")
    p.add_argument(
        "--folded",
        action="store_true",
        help="also write the samples as folded stacks (PROFILE-<load>.folded), the input "
        "format of flame-graph tools",
    )
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    spy = py_spy()
    opts = options.parse(
        [
            "--connections",
            str(a.connections),
            "--processes",
            str(a.processes),
            "--access-log",
            a.access_log,
            "--users",
            str(a.connections),  # one user per connection
        ]
    )
    client = redis.Redis.from_url(opts.redis_url)
    clean_stores(opts, client)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    ctx = Context(opts, wrk.ensure_wrk(), log_dir, client, 0)
    out_dir = REPO_ROOT / a.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        hello, app = ctx.start_hello(), ctx.start_app()
        ctx.fixture = asyncio.run(register_users("127.0.0.1", app.port, opts.users))
        headers = ctx.user_headers()
        loads = [
            ("hello", "hello world", hello, wrk.Load("/", headers)),
            ("whoami", "signed-in GET /whoami", app, wrk.Load("/whoami", headers)),
            ("home", "signed-in GET /home (JSON)", app, wrk.Load("/home", headers)),
        ]
        for name, label, server, load in loads:
            wrk.run(ctx.wrk, server.url, load, connections=a.connections, duration=2)
            prof = record(
                spy,
                ctx,
                f"{label}, {a.connections} connections, "
                f"{a.processes} processes, access log {a.access_log}",
                server,
                load,
                duration=a.duration,
                rate=a.rate,
                svg=None,
            )
            text = render(prof)
            (out_dir / f"PROFILE-{name}.txt").write_text(text)
            if a.folded:
                (out_dir / f"PROFILE-{name}.folded").write_text(folded(prof))
            print(text, flush=True)
            if a.svg:
                record(
                    spy,
                    ctx,
                    label,
                    server,
                    load,
                    duration=a.duration,
                    rate=a.rate,
                    svg=out_dir / f"PROFILE-{name}.svg",
                )
    finally:
        for server in list(ctx.servers):
            ctx.stop(server)
        clean_stores(opts, client)
        client.close()
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
