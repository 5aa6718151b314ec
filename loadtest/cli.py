"""Command line: parse options, run the load, print and write the reports, exit code.

Exit codes: 0 every check held; 1 a check failed (violations, errors over the allowed
rate, unfinished users, no sharing with --require-sharing); 2 bad options; 3 the target
could not be reached before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from loadtest.config import DEFAULT_REPORT, DEFAULT_TARGET, Config
from loadtest.progress import Progress
from loadtest.report_html import write_html
from loadtest.report_json import write_json
from loadtest.report_text import render_text
from loadtest.runner import Runner, TargetUnreachable, preflight
from loadtest.verdict import evaluate

EXIT_UNREACHABLE = 3

DESCRIPTION = """\
Load-test the app with virtual users that sign up, sign in, load /home, post and fetch
statuses and sign out, each with its own cookie jar, opening new connections over time so
that one signed-in user is served by several server processes. Prints live progress
(stderr), a report (stdout) with the session-sharing matrix, writes an HTML report, and
exits non-zero when any correctness check fails.
"""

EPILOG = """\
checks that fail the run:
  a signed-in request answered as signed out (401 or a redirect to /); a views counter
  that differs from the visits made in that session; a posted status missing, duplicated
  or out of order in /fetchStatus; an answer naming another user; a session cookie still
  accepted after logout; errors (5xx, unexpected statuses, connection failures and
  timeouts) above --max-error-rate.

examples:
  python -m loadtest --users=50 --duration=60
  python -m loadtest --target=http://127.0.0.1:8080 --users=100 --duration=120 --json=out.json
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def _rate(text: str) -> float:
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1 (or 0%%..100%%)")
    return value


def _target(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError("must be an http:// or https:// base URL")
    if parts.query or parts.fragment:
        raise argparse.ArgumentTypeError("must have no query or fragment")
    return text.rstrip("/")


def _optional_path(text: str) -> Path | None:
    return None if text in ("", "-", "none") else Path(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    p = argparse.ArgumentParser(
        prog="python -m loadtest",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = Config()
    run = p.add_argument_group("load")
    run.add_argument(
        "--target",
        metavar="URL",
        type=_target,
        default=DEFAULT_TARGET,
        help="base URL of the app or of nginx in front of it (default %(default)s)",
    )
    run.add_argument(
        "--users",
        metavar="N",
        type=_positive_int,
        default=d.users,
        help="number of virtual users (default %(default)s)",
    )
    run.add_argument(
        "--duration",
        metavar="SECONDS",
        type=_seconds,
        default=d.duration,
        help="seconds of load; users then finish their session (default %(default)s)",
    )
    run.add_argument(
        "--ramp",
        metavar="SECONDS",
        type=_seconds,
        default=d.ramp,
        help="seconds over which users start, evenly spread (default %(default)s)",
    )
    run.add_argument(
        "--think",
        metavar="SECONDS",
        type=_seconds,
        default=d.think,
        help="mean pause between a user's requests, uniformly jittered between 0 "
        "and twice this (default %(default)s)",
    )
    run.add_argument(
        "--actions",
        metavar="N",
        type=_positive_int,
        default=d.actions,
        help="mean number of actions per signed-in session before logout (default %(default)s)",
    )
    run.add_argument(
        "--new-connection-every",
        type=_non_negative_int,
        metavar="N",
        default=d.new_connection_every,
        help="each user opens a new TCP connection after N requests; 1 = every "
        "request, 0 = keep-alive for good, which pins a user to one process "
        "(default %(default)s)",
    )
    run.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=d.timeout,
        help="per-request timeout in seconds (default %(default)s)",
    )
    run.add_argument(
        "--grace",
        metavar="SECONDS",
        type=_seconds,
        default=d.grace,
        help="seconds after --duration for users to log out; then they are "
        "cancelled and the run fails (default %(default)s)",
    )
    run.add_argument(
        "--fetch-limit",
        metavar="N",
        type=_positive_int,
        default=d.fetch_limit,
        help="?limit= for GET /fetchStatus (default %(default)s)",
    )
    run.add_argument(
        "--session-cookie",
        default=d.session_cookie,
        metavar="NAME",
        help="name of the app's session cookie, replayed after logout to check "
        "it is refused (default %(default)s)",
    )
    run.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=None,
        help="seed for think times and action choices (default: random)",
    )

    out = p.add_argument_group("reports")
    out.add_argument(
        "--report",
        type=_optional_path,
        default=DEFAULT_REPORT,
        metavar="PATH",
        help="HTML report to write; '-' for none (default %(default)s)",
    )
    out.add_argument(
        "--json",
        type=_optional_path,
        default=None,
        metavar="PATH",
        help="also write a machine-readable JSON summary to PATH",
    )
    out.add_argument(
        "--max-users-shown",
        type=_non_negative_int,
        default=50,
        metavar="N",
        help="rows of the sharing matrix in the text report (default %(default)s)",
    )
    show = out.add_mutually_exclusive_group()
    show.add_argument(
        "--quiet",
        "-q",
        action="store_const",
        dest="progress",
        const="off",
        help="no live progress display",
    )
    show.add_argument(
        "--progress",
        choices=("auto", "tty", "lines", "off"),
        default="auto",
        help="live display on stderr: a redrawn line on a terminal, a plain line "
        "every few seconds otherwise (default %(default)s)",
    )
    out.add_argument(
        "--progress-interval",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds between progress updates (default 1 on a terminal, else 5)",
    )

    gate = p.add_argument_group("pass/fail")
    gate.add_argument(
        "--max-error-rate",
        type=_rate,
        default=d.max_error_rate,
        metavar="RATE",
        help="fraction of requests allowed to fail (5xx, unexpected status, "
        "connection error, timeout), e.g. 0.01 or 1%% (default 0)",
    )
    gate.add_argument(
        "--max-violations",
        type=_non_negative_int,
        default=d.max_violations,
        metavar="N",
        help="correctness violations allowed (default 0)",
    )
    gate.add_argument(
        "--require-sharing",
        action="store_true",
        help="fail unless at least one session was served by two or more processes",
    )
    return p


def config_from_args(argv: Sequence[str] | None = None) -> Config:
    """Parse the command line into a :class:`Config` (exits 2 on bad options)."""
    args = build_parser().parse_args(argv)
    return Config(
        target=args.target,
        users=args.users,
        duration=args.duration,
        ramp=args.ramp,
        think=args.think,
        actions=args.actions,
        new_connection_every=args.new_connection_every,
        timeout=args.timeout,
        grace=args.grace,
        fetch_limit=args.fetch_limit,
        session_cookie=args.session_cookie,
        seed=args.seed,
        report=args.report,
        json=args.json,
        max_error_rate=args.max_error_rate,
        max_violations=args.max_violations,
        require_sharing=args.require_sharing,
        progress=args.progress,
        progress_interval=args.progress_interval,
        max_users_shown=args.max_users_shown,
    )


def make_progress(config: Config) -> Progress:
    """The progress display that suits stderr: redrawn on a terminal, lines otherwise."""
    mode = config.progress
    if mode == "auto":
        mode = "tty" if sys.stderr.isatty() else "lines"
    interval = config.progress_interval or (1.0 if mode == "tty" else 5.0)
    return Progress(sys.stderr, mode, interval)


async def _run(config: Config) -> int:
    try:
        await preflight(config.target, min(config.timeout, 10.0))
    except TargetUnreachable as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    runner = Runner(config, make_progress(config))
    result = await runner.run()
    verdict = evaluate(result)
    print(render_text(result, verdict, config.max_users_shown))
    if config.report is not None:
        write_html(config.report, result, verdict)
        print(f"HTML report: {config.report}")
    if config.json is not None:
        write_json(config.json, result, verdict)
        print(f"JSON summary: {config.json}")
    return verdict.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m loadtest``; returns the exit code."""
    config = config_from_args(argv)
    try:
        return asyncio.run(_run(config))
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return 130
