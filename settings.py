"""Configuration: every command-line option, environment overrides, the cookie secrets.

Options use Tornado's ``--name=value`` convention (``server.py --help`` lists them).
Each may also be set with an environment variable ``APP_<NAME>`` (for example
``APP_REDIS_URL``); the command line wins. Secrets belong in the environment or in a
file, never on a shared command line.

Cookie secrets: ``--cookie_secret`` is either one secret, or several versioned ones,
``"1:old-secret 2:new-secret"`` (separated by spaces, commas or new lines). The highest
version signs new cookies; every version verifies. Without ``--cookie_secret`` the
secrets are read from ``--cookie_secret_file`` (same format, one per line); when that
file does not exist it is created once with a random secret, readable only by its
owner, so that every process and every restart agree.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from tornado.options import OptionParser, define, options

from accounts.throttle import ThrottleConfig
from serving import ServingConfig, define_serving_options, serving_config_from_options
from sessions.cache import DEFAULT_SIZE as DEFAULT_CACHE_SIZE
from sessions.store import SessionConfig

log = logging.getLogger("app")
ROOT = Path(__file__).resolve().parent
ENV_PREFIX = "APP_"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class AppConfig:
    """Everything the application needs, independent of the global option parser."""

    cookie_secrets: dict[int, str]
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""
    redis_timeout: float = 0.5
    mysql_url: str = "mysql://root@127.0.0.1:3306/appdb"
    mysql_pool_size: int = 10
    session_cache_size: int = DEFAULT_CACHE_SIZE
    session: SessionConfig = field(default_factory=SessionConfig)
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    bcrypt_rounds: int = 12
    hash_queue_size: int = 16
    secure_cookies: bool = False
    worker_threads: int = 0
    bcrypt_on_event_loop: bool = False
    debug: bool = False
    access_log: bool = True
    serving: ServingConfig = field(default_factory=ServingConfig)
    metrics: bool = True
    metrics_port: int = 0  # 0: /metrics on the app's port
    log_format: str = "json"

    @property
    def key_version(self) -> int:
        return max(self.cookie_secrets)


#: The defaults of every option below, each stated once: in the dataclasses above.
_DEFAULTS = AppConfig(cookie_secrets={})
_SESSION = _DEFAULTS.session
_THROTTLE = _DEFAULTS.throttle

define_serving_options(options)
define(
    "debug",
    default=_DEFAULTS.debug,
    type=bool,
    group="server",
    help="development mode: template reloading, tracebacks in logs; implies --processes=1",
)
define(
    "access_log",
    default=_DEFAULTS.access_log,
    type=bool,
    group="server",
    help="log one line per request (level INFO)",
)
define(
    "redis_url",
    default=_DEFAULTS.redis_url,
    group="stores",
    help="Redis for sessions and throttling",
)
define(
    "redis_prefix",
    default=_DEFAULTS.redis_prefix,
    group="stores",
    help="prefix of every Redis key written",
)
define(
    "redis_timeout",
    default=_DEFAULTS.redis_timeout,
    type=float,
    group="stores",
    help="seconds to wait for Redis per attempt (an outage surfaces within ~3x this)",
)
define(
    "session_cache_size",
    default=_DEFAULTS.session_cache_size,
    type=int,
    group="stores",
    help="sessions cached per process, kept exact by Redis invalidation (0 = none)",
)
define(
    "mysql_url",
    default=_DEFAULTS.mysql_url,
    group="stores",
    help="MariaDB/MySQL database; created, with schema.sql, when missing",
)
define(
    "mysql_pool_size",
    default=_DEFAULTS.mysql_pool_size,
    type=int,
    group="stores",
    help="MariaDB connections per process at most",
)
define(
    "cookie_secret",
    default="",
    group="security",
    help="cookie signing secret(s): SECRET or 'N:SECRET M:SECRET' (env APP_COOKIE_SECRET)",
)
define(
    "cookie_secret_file",
    default=str(ROOT / "var" / "cookie_secret"),
    group="security",
    help="file of secrets (one 'N:SECRET' per line), created when missing",
)
define(
    "session_idle_timeout",
    default=_SESSION.idle_timeout,
    type=int,
    group="security",
    help="seconds of inactivity after which a session ends",
)
define(
    "session_absolute_timeout",
    default=_SESSION.absolute_timeout,
    type=int,
    group="security",
    help="seconds after sign-in after which a session ends regardless of activity",
)
define(
    "bcrypt_rounds",
    default=_DEFAULTS.bcrypt_rounds,
    type=int,
    group="security",
    help="bcrypt work factor (4-31)",
)
define(
    "login_max_failures",
    default=_THROTTLE.per_pair,
    type=int,
    group="security",
    help="sign-in attempts per (account, client address) per 15 minutes before 429",
)
define(
    "login_max_failures_per_ip",
    default=_THROTTLE.per_ip,
    type=int,
    group="security",
    help="sign-in attempts per client address (any account) per 15 minutes before 429",
)
define(
    "login_slow_after",
    default=_THROTTLE.slow_after,
    type=int,
    group="security",
    help="sign-in attempts per account (any address) per 15 minutes before each further "
    "one is delayed (0.5 s, doubling, at most --login_max_delay); never a lockout",
)
define(
    "login_max_delay",
    default=_THROTTLE.delay_max,
    type=float,
    group="security",
    help="seconds: the longest delay of a sign-in to an account under attack",
)
define(
    "register_max_per_ip",
    default=_THROTTLE.register_per_ip,
    type=int,
    group="security",
    help="registrations per client address per hour before 429 (0 = no limit)",
)
define(
    "hash_queue_size",
    default=_DEFAULTS.hash_queue_size,
    type=int,
    group="security",
    help="bcrypt jobs running or waiting per process; more answer 503 (0 = no limit)",
)
define(
    "max_sessions_per_user",
    default=50,
    type=int,
    group="security",
    help="live sessions per user; signing in once more ends the oldest (0 = no limit)",
)
define(
    "secure_cookies",
    default=_DEFAULTS.secure_cookies,
    type=bool,
    group="security",
    help="cookies always Secure, named with the __Host- prefix (behind a TLS proxy)",
)
define(
    "bcrypt_on_event_loop",
    default=_DEFAULTS.bcrypt_on_event_loop,
    type=bool,
    group="server",
    help="benchmarks only: run bcrypt on the event loop to show what it costs",
)
define(
    "metrics",
    default=_DEFAULTS.metrics,
    type=bool,
    group="operations",
    help="count Prometheus metrics and serve GET /metrics (false: neither, for benchmarks)",
)
define(
    "metrics_port",
    default=_DEFAULTS.metrics_port,
    type=int,
    group="operations",
    help="serve GET /metrics on this port of 127.0.0.1 instead of the app's port (0: the app's)",
)
define(
    "log_format",
    default=_DEFAULTS.log_format,
    group="operations",
    help="log lines as json or logfmt (one line per request with --access_log)",
)
define(
    "worker_threads",
    default=_DEFAULTS.worker_threads,
    type=int,
    group="server",
    help="threads per process for CPU work (bcrypt); 0 = one per core",
)


def apply_environment(
    parser: OptionParser = options, environ: dict[str, str] | None = None
) -> None:
    """Set each option from ``APP_<NAME>`` when present (call before parsing argv).

    Raises ``ValueError`` naming the variable when a value does not parse.
    """
    environ = dict(os.environ) if environ is None else environ
    for name in list(parser):
        key = ENV_PREFIX + name.replace("-", "_").upper()
        if key in environ:
            try:  # the parser's own parsing, as for --name=value on the command line
                parser.parse_command_line(["", f"--{name}={environ[key]}"], final=False)
            except Exception as exc:  # tornado raises ValueError or its own Error
                raise ValueError(f"{key}={environ[key]!r}: {exc}") from None


def parse_secrets(text: str) -> dict[int, str]:
    """``"SECRET"`` or ``"1:SECRET 2:SECRET"`` to ``{version: secret}``."""
    entries = [e for e in re.split(r"[\s,]+", text.strip()) if e]
    if not entries:
        raise ValueError("no cookie secret given")
    versioned: dict[int, str] = {}
    for entry in entries:
        match = re.fullmatch(r"(\d{1,9}):(.+)", entry)
        if match is None:
            if len(entries) > 1:
                raise ValueError("with several cookie secrets, write each as VERSION:SECRET")
            versioned[1] = entry
        else:
            versioned[int(match.group(1))] = match.group(2)
    for version, secret in versioned.items():
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"cookie secret version {version} is shorter than {MIN_SECRET_LENGTH} characters"
            )
    return versioned


def load_cookie_secrets(secret: str, secret_file: str) -> dict[int, str]:
    """The secrets from the option, else from the file (created on first use)."""
    if secret:
        return parse_secrets(secret)
    path = Path(secret_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(f"1:{secrets.token_urlsafe(48)}\n")
            log.warning("generated a new cookie secret in %s (development only)", path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    return parse_secrets(path.read_text())


def config_from_options() -> AppConfig:
    """Build the :class:`AppConfig` from the parsed options (raises ValueError if bad)."""
    if not 4 <= options.bcrypt_rounds <= 31:
        raise ValueError("--bcrypt_rounds must be between 4 and 31")
    if options.session_idle_timeout <= 0 or options.session_absolute_timeout <= 0:
        raise ValueError("session timeouts must be positive")
    listen = serving_config_from_options(options)
    if options.debug:
        listen = dataclasses.replace(listen, processes=1)
    if options.log_format not in ("json", "logfmt"):
        raise ValueError("--log_format must be json or logfmt")
    if not 0 <= options.metrics_port <= 65535:
        raise ValueError("--metrics_port must be a port number (0: the app's port)")
    return AppConfig(
        cookie_secrets=load_cookie_secrets(options.cookie_secret, options.cookie_secret_file),
        redis_url=options.redis_url,
        redis_prefix=options.redis_prefix,
        redis_timeout=options.redis_timeout,
        mysql_url=options.mysql_url,
        mysql_pool_size=options.mysql_pool_size,
        session_cache_size=options.session_cache_size,
        session=SessionConfig(
            idle_timeout=options.session_idle_timeout,
            absolute_timeout=options.session_absolute_timeout,
            prefix=options.redis_prefix,
            max_per_user=options.max_sessions_per_user,
        ),
        throttle=ThrottleConfig(
            per_pair=options.login_max_failures,
            per_ip=options.login_max_failures_per_ip,
            slow_after=options.login_slow_after,
            delay_max=options.login_max_delay,
            register_per_ip=options.register_max_per_ip,
        ),
        bcrypt_rounds=options.bcrypt_rounds,
        hash_queue_size=options.hash_queue_size,
        secure_cookies=options.secure_cookies,
        worker_threads=options.worker_threads,
        bcrypt_on_event_loop=options.bcrypt_on_event_loop,
        debug=options.debug,
        access_log=options.access_log,
        serving=listen,
        metrics=options.metrics,
        metrics_port=options.metrics_port,
        log_format=options.log_format,
    )
