"""Structured logs: one line per request, session lifecycle events, throttling decisions.

Every record, the app's and Tornado's alike, goes out as one line: JSON by default,
logfmt with ``--log_format=logfmt``. The standard library's ``logging`` does the work,
with :class:`StructuredFormatter` on the root handlers (chosen over ``structlog``: the
app and Tornado already log through ``logging``, so one formatter covers every line
with no second logging system, no processor chain per call and no new dependency).

A line has ``time`` (UTC, milliseconds), ``level``, ``logger``, ``event`` (the
message), ``pid``, the ``request_id`` of the request being served (when there is one)
and the record's own fields, passed as ``log.info(event, extra={"fields": {...}})``.

Per request (logger ``app.access``, event ``request``): ``method``, ``route`` (the
route pattern), ``path`` (never the query string, which may hold secrets), ``status``,
``duration_ms``, ``client`` (the real address: behind ``--xheaders`` the one nginx
forwarded), ``sid`` (a digest of the session id, never the id) and ``user_id``. The
request id is also the ``X-Request-Id`` response header; an incoming ``X-Request-Id``
is kept when ``--xheaders`` is on (the proxy in front is trusted) and well-formed.

Session events (logger ``app.sessions``): ``session_created``, ``session_ended`` with
its ``reason``; throttling decisions (logger ``app.throttle``): ``throttled``, with the
route that refused (sign-in, registration, password change).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from typing import Any

import tornado.web

from sessions.events import SessionEvents
from sessions.ids import sid_digest

FORMATS = ("json", "logfmt")
REQUEST_ID_HEADER = "X-Request-Id"
TRUST_REQUEST_ID = "trust_request_id"  # application setting: keep incoming ids (xheaders)
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_BARE = re.compile(r"[^\s\"=\\]+")

access_log = logging.getLogger("app.access")
session_log = logging.getLogger("app.sessions")
throttle_log = logging.getLogger("app.throttle")


class StructuredFormatter(logging.Formatter):
    """One record, one line: JSON, or logfmt (``key=value``, quoted when needed)."""

    def __init__(self, fmt: str = "json") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        super().__init__()
        self.render = _json if fmt == "json" else _logfmt

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        fields: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,
        }
        request_id = _request_id.get()
        if request_id is not None:
            fields["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if extra:
            fields.update(extra)
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return self.render(fields)


def _json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str)


def _logfmt(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if not _BARE.fullmatch(text):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def configure(fmt: str) -> None:
    """Give every handler of the root logger the structured formatter (after option parsing)."""
    formatter = StructuredFormatter(fmt)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    for handler in root.handlers:
        handler.setFormatter(formatter)
    # The sessions package notes its own lifecycle lines at INFO; the app logs the same
    # events through the store's hook (app.sessions), with the request's id: keep one.
    logging.getLogger("sessions").setLevel(logging.WARNING)


def request_id(handler: tornado.web.RequestHandler) -> str:
    """This request's id (made once per request), and the current one for log lines."""
    request = handler.request
    rid: str | None = getattr(request, "request_id", None)
    if rid is None:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        if (
            incoming
            and handler.settings.get(TRUST_REQUEST_ID)
            and _VALID_REQUEST_ID.fullmatch(incoming)
        ):
            rid = incoming
        else:
            rid = os.urandom(8).hex()
        request.request_id = rid  # type: ignore[attr-defined]
        _request_id.set(rid)
    return rid


def log_request(handler: tornado.web.RequestHandler, route: str, seconds: float) -> None:
    """The access line of one finished request."""
    request = handler.request
    session = getattr(handler, "_session", None)
    locator = session.locator if session is not None else None
    status = handler.get_status()
    level = logging.INFO if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    fields = {
        "request_id": request_id(handler),
        "method": request.method,
        "route": route,
        "path": request.path,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "client": request.remote_ip,
        "sid": sid_digest(locator.sid) if locator is not None else None,
        "user_id": locator.user_id if locator is not None else None,
    }
    access_log.log(level, "request", extra={"fields": fields})


def log_throttled(handler: tornado.web.RequestHandler, route: str) -> None:
    """A request refused by a throttle (429): a sign-in, a registration, a password change."""
    fields = {
        "request_id": request_id(handler),
        "route": route,
        "client": handler.request.remote_ip,
        "retry_after": handler._headers.get("Retry-After"),
    }
    throttle_log.warning("throttled", extra={"fields": fields})


class LoggingSessionEvents(SessionEvents):
    """Session lifecycle events as log lines; passes every event on to ``inner`` too."""

    def __init__(self, inner: SessionEvents | None = None) -> None:
        self.inner = inner or SessionEvents()

    def created(self, digest: str, user_id: int | None) -> None:
        session_log.info("session_created", extra={"fields": {"sid": digest, "user_id": user_id}})
        self.inner.created(digest, user_id)

    def ended(self, reason: str, digest: str, user_id: int | None) -> None:
        fields = {"reason": reason, "sid": digest, "user_id": user_id}
        session_log.info("session_ended", extra={"fields": fields})
        self.inner.ended(reason, digest, user_id)

    def cache_lookup(self, hit: bool) -> None:
        self.inner.cache_lookup(hit)

    def command(self, script: str, seconds: float, error: Exception | None) -> None:
        if error is not None:
            fields = {"script": script, "error": f"{type(error).__name__}: {error}"}
            session_log.warning("redis_command_failed", extra={"fields": fields})
        self.inner.command(script, seconds, error)
