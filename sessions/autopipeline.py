"""One Redis connection per process, on which concurrent requests' commands are pipelined.

The session lookup is on every request's path, and redis-py's general client path (pool
checkout, retry wrapper, connection health checks, per-command reads under a timeout
context) costs more CPU per command than the rest of a small request. For the session
store's few commands this module keeps one connection per worker process and:

* packs each command with hiredis (``hiredis.pack_command``) and queues it; everything
  queued during one pass of the event loop goes out in a single ``write`` (commands from
  many concurrent requests share one round trip: *auto-pipelining*);
* parses replies with hiredis's C reader as they arrive and resolves the waiting
  futures in order (Redis answers a connection's commands in order);
* bounds every command by ``timeout`` (one watchdog timer per connection, armed for
  the oldest command's deadline); a command that times out, or a dropped
  connection, fails everything in flight on that connection, which is then closed: with
  pipelining, a lost reply would misalign every later one;
* never re-sends a command. A command whose fate is unknown is not retried, so an
  increment can never be applied twice (redis-py's retry-on-error would re-send it).
  Only connecting is retried: the next command reconnects.

``rediss://`` URLs connect with TLS (``ssl_ca_certs``, ``ssl_certfile``,
``ssl_keyfile`` and ``ssl_cert_reqs`` as redis-py reads them from the query string);
user and password are sent with ``HELLO 3 AUTH``. The transport is only used through
asyncio's ``Transport`` interface, so the connection also runs under uvloop.

It speaks RESP3 (``HELLO 3``, Redis 6 or later) so that, when asked, the same connection
carries Redis's server-assisted invalidation messages (``CLIENT TRACKING ON NOLOOP``,
per-key mode: Redis tracks the keys this connection reads and pushes the name of each
one another connection changes afterwards). Redis queues such a push while it executes
the change, so a push arrives before the reply to any command of ours executed after
that change. Each push is handed to ``on_invalidate`` synchronously, as is each reply
to its command's ``on_reply`` hook.
A caller that keeps a cache therefore sees every change in Redis's own order, with
nothing in between. When the connection drops, ``on_invalidate(None)`` says "forget
everything": invalidations may have been missed.

Reading is normally the event loop's job, which a busy loop does late: a request read
from another socket in the same loop pass can reach the cache before a push that arrived
earlier is handled. :meth:`AutoPipeline.read_pending` closes that gap: it handles, on
the spot, whatever Redis has already sent (one ``poll`` with a zero timeout, ~1 µs, and
a read only when something is there), and says whether anything may still be unhandled.
A cache consulted only after it returned True has seen every push that Redis wrote to
this connection before the lookup.

Errors are redis-py's exception classes (``ConnectionError``, ``TimeoutError``,
``ResponseError``), so callers handle one family, ``redis.exceptions.RedisError``.
The connection is created lazily in the running loop: create this object inside each
worker process, after the fork.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Called with the invalidated keys, or None for "everything" (flush, or channel lost).
InvalidationHandler = Callable[[list[bytes] | None], None]
#: Called with a successful reply as it is parsed, before the caller resumes.
ReplyHook = Callable[[Any], None]
#: Called when a connection is lost (dropped, timed out, or protocol error).
DisconnectHandler = Callable[[], None]

_Pending = tuple[asyncio.Future[Any], float, ReplyHook | None]
_READ_SIZE = 65536  # bytes per synchronous read in ``read_pending``
_READABLE = select.POLLIN | select.POLLPRI | select.POLLRDHUP


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: AutoPipeline) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        # Commands in flight, oldest first: future, deadline (loop time), reply hook.
        self.pending: deque[_Pending] = deque()
        self.outgoing: list[bytes] = []  # packed commands waiting for this loop pass's write
        self.watchdog: asyncio.TimerHandle | None = None  # fires at the oldest deadline
        self.closed = False
        # For ``read_pending``: the socket's descriptor, polled with a zero timeout, and
        # whether its bytes are Redis's own (read directly) or TLS records (not).
        self.fd = -1
        self.poller: select.poll | None = None
        self.plain = False
        # Resolved by ``connection_lost``: the transport has closed its socket.
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any loop's stream transport (asyncio's, uvloop's) has write() and abort().
        self.transport = cast(asyncio.Transport, transport)
        self.owner._sockets.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
            self.poller = select.poll()
            self.poller.register(self.fd, _READABLE)
            self.plain = transport.get_extra_info("sslcontext") is None

    def read_pending(self) -> bool:
        """Handle now what Redis has already sent; True when nothing is left unhandled.

        Plain connections: the bytes waiting in the socket are read here and parsed as
        ``data_received`` would (the transport later finds the socket empty, which it
        expects of a non-blocking socket). TLS connections: their bytes are records for
        the transport to decrypt, so waiting bytes only make the answer False. A
        message cut in two by the network (its rest not yet arrived) also gives False.
        """
        poller = self.poller
        if poller is None:
            return False  # no socket to look at: nothing can be vouched for
        while poller.poll(0):
            if not self.plain:
                return False
            try:
                data = os.read(self.fd, _READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.fail(RedisConnectionError(f"connection to Redis lost: {exc}"))
                return True  # the cache was emptied with the connection
            if not data:
                self.fail(RedisConnectionError("connection to Redis closed by the server"))
                return True
            self.data_received(data)
            if self.closed:
                return True
            if len(data) < _READ_SIZE:
                break
        return not self.reader.has_data()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if isinstance(reply, hiredis.PushNotification):
                self.owner._push(reply)
                continue
            if not pending:
                self.fail(RedisConnectionError("reply without a request"))
                return
            future, _deadline, hook = pending.popleft()
            if isinstance(reply, hiredis.ReplyError):
                if not future.done():
                    message = str(reply)
                    cls = NoScriptError if message.startswith("NOSCRIPT") else ResponseError
                    future.set_exception(cls(message))
                continue
            if hook is not None:
                hook(reply)  # even if its caller gave up: the reply is Redis's truth
            if not future.done():  # done = cancelled by its caller; the reply is dropped
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._sockets.discard(self)
        if not self.gone.done():
            self.gone.set_result(None)
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def fail(self, error: Exception) -> None:
        """Fail every command in flight and drop the connection."""
        if self.closed:
            return
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.pending:
            future, _deadline, _hook = self.pending.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()
        self.owner._lost(self)


class AutoPipeline:
    """Send Redis commands over one auto-pipelined RESP3 connection.

    ``url`` is a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL (user, password and
    database honoured). With ``tracking_prefixes`` and ``on_invalidate``, the connection
    turns tracking on, and ``on_invalidate`` receives the keys under those prefixes that
    *other* connections changed after this one read them (per-key mode, NOLOOP).
    ``on_disconnect`` is told each time an established connection is lost.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        tracking_prefixes: Sequence[str] = (),
        on_invalidate: InvalidationHandler | None = None,
        on_disconnect: DisconnectHandler | None = None,
    ) -> None:
        self._params = parse_url(url)
        self._ssl = _ssl_context(dict(self._params)) if url.startswith("rediss://") else None
        self._timeout = timeout
        self._prefixes = list(tracking_prefixes) if on_invalidate is not None else []
        self._tracked = tuple(prefix.encode() for prefix in self._prefixes)
        self._on_invalidate = on_invalidate
        self._on_disconnect = on_disconnect
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        # Every connection whose socket is open: the current one, one being set up, and
        # failed ones whose transport closes its socket a loop pass or more later.
        self._sockets: set[_Protocol] = set()

    # ----- connection ------------------------------------------------------------
    def _lost(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None
        if self._on_invalidate is not None:
            self._on_invalidate(None)  # invalidations may have been missed: forget all
        if self._on_disconnect is not None:
            self._on_disconnect()

    def _push(self, push: list[Any]) -> None:
        if self._on_invalidate is None or not push or push[0] != b"invalidate":
            return
        keys = push[1]  # None after FLUSHDB/FLUSHALL
        if keys is not None:  # tracked keys outside the prefixes (a user's index) are not ours
            keys = [key for key in keys if key.startswith(self._tracked)]
            if not keys:
                return
        self._on_invalidate(keys)

    def _setup_commands(self) -> list[tuple[Any, ...]]:
        params = self._params
        hello: tuple[Any, ...] = ("HELLO", 3)
        if params.get("password"):
            hello += ("AUTH", params.get("username") or "default", params["password"])
        commands = [hello]
        if params.get("db"):
            commands.append(("SELECT", params["db"]))
        if self._prefixes:
            # Per-key mode, not BCAST: broadcast pushes a connection's own writes made
            # inside scripts back to it despite NOLOOP (Redis 7.0), after the replies of
            # later commands, merged with other connections' changes of the same keys.
            commands.append(("CLIENT", "TRACKING", "ON", "NOLOOP"))
        return commands

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        params = self._params
        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(self._timeout):
                if "path" in params:
                    _, protocol = await loop.create_unix_connection(
                        lambda: _Protocol(self), params["path"]
                    )
                else:
                    host = params.get("host", "127.0.0.1")
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(self),
                        host,
                        params.get("port", 6379),
                        ssl=self._ssl,
                        server_hostname=host if self._ssl is not None else None,
                    )
                assert protocol is not None and protocol.transport is not None
                futures = []
                for command in self._setup_commands():
                    future = loop.create_future()
                    protocol.pending.append((future, loop.time() + self._timeout, None))
                    futures.append(future)
                    protocol.transport.write(hiredis.pack_command(command))
                for future in futures:
                    await future
        except BaseException as exc:
            if protocol is not None and protocol.transport is not None:
                protocol.closed = True
                protocol.transport.abort()
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError(f"Redis did not answer within {self._timeout} s") from exc
            if isinstance(exc, OSError):  # ssl.SSLError is one
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            if isinstance(exc, ResponseError | RedisConnectionError):
                raise RedisConnectionError(f"Redis refused the connection setup: {exc}") from exc
            raise
        return protocol

    async def _ready(self) -> _Protocol:
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        if self._connecting is None:  # one connect at a time; others wait for it
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            protocol = await asyncio.shield(connecting)
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        self._protocol = protocol
        return protocol

    def nodes(self) -> dict[str, AutoPipeline]:
        """This connection by its server's address ("host:port", or the socket path)."""
        params = self._params
        address = (
            params.get("path") or f"{params.get('host', '127.0.0.1')}:{params.get('port', 6379)}"
        )
        return {str(address): self}

    async def connect(self) -> None:
        """Connect now (commands connect on their own when needed)."""
        await self._ready()

    def read_pending(self) -> bool:
        """Handle every push and reply Redis has already sent, synchronously.

        Returns True when nothing is left unhandled: a cache kept by ``on_invalidate``
        then reflects every invalidation Redis wrote to this connection so far. Call it
        right before trusting such a cache; it costs one ``poll`` syscall when nothing
        is waiting. Without a connection it returns True: the cache was emptied when
        the connection was lost, and is filled again only from the next one's replies.
        """
        protocol = self._protocol
        if protocol is None or protocol.closed:
            return True
        return protocol.read_pending()

    # ----- commands --------------------------------------------------------------
    async def execute(self, *args: Any, on_reply: ReplyHook | None = None) -> Any:
        """Send one command and return its reply (bytes, int, list, dict, None).

        ``on_reply`` runs with a successful reply the moment it is parsed, before any
        later push or reply on the connection is handled.
        """
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._ready()
        return await self._send(protocol, args, on_reply)

    async def execute_asking(self, *args: Any, on_reply: ReplyHook | None = None) -> Any:
        """Send ``ASKING`` and the command adjacently (a Redis Cluster ``ASK`` redirect):
        nothing else on the connection comes between them."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._ready()
        asking = self._send(protocol, ("ASKING",), None)
        command = self._send(protocol, args, on_reply)
        await asking
        return await command

    def _send(
        self, protocol: _Protocol, args: tuple[Any, ...], on_reply: ReplyHook | None
    ) -> asyncio.Future[Any]:
        """Queue one command on ``protocol`` (no await: successive calls stay adjacent)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        protocol.pending.append((future, loop.time() + self._timeout, on_reply))
        if not protocol.outgoing:  # the first command of this pass schedules the write
            loop.call_soon(self._flush, protocol)
        protocol.outgoing.append(hiredis.pack_command(args))
        if protocol.watchdog is None:
            protocol.watchdog = loop.call_later(self._timeout, self._watch, protocol)
        return future

    @staticmethod
    def _flush(protocol: _Protocol) -> None:
        data, protocol.outgoing = b"".join(protocol.outgoing), []
        if protocol.closed or protocol.transport is None:
            return  # its futures were failed with the connection
        protocol.transport.write(data)

    def _watch(self, protocol: _Protocol) -> None:
        """Fail the connection if its oldest command is past its deadline, else re-arm.

        Replies come in order, so the oldest command is the only one to watch: one
        timer per connection instead of one per command.
        """
        protocol.watchdog = None
        if protocol.closed or not protocol.pending:
            return
        loop = asyncio.get_running_loop()
        deadline = protocol.pending[0][1]
        now = loop.time()
        if now >= deadline:
            protocol.fail(RedisTimeoutError(f"Redis did not answer within {self._timeout} s"))
        else:
            protocol.watchdog = loop.call_later(deadline - now, self._watch, protocol)

    async def evalsha(
        self,
        script: Script,
        keys: list[str],
        args: list[Any],
        on_reply: ReplyHook | None = None,
        *,
        asking: bool = False,
    ) -> Any:
        """Run a script by its SHA-1; load it once if Redis does not know it (NOSCRIPT).

        ``asking``: preceded by ``ASKING`` (a Redis Cluster ``ASK`` redirect).
        """
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        send = self.execute_asking if asking else self.execute
        protocol = self._protocol
        try:
            if asking or protocol is None or protocol.closed:
                return await send(*command, on_reply=on_reply)
            # Every request's case: queued at once, without a coroutine of its own.
            return await self._send(protocol, command, on_reply)
        except NoScriptError:
            await self.execute("SCRIPT", "LOAD", script.source)
            return await send(*command, on_reply=on_reply)

    async def close(self) -> None:
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()  # a connection set up now would never be closed
            await asyncio.wait([connecting])  # its socket, if any, is now being closed
            if not connecting.cancelled():
                connecting.exception()  # retrieved: its error was its caller's
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            if protocol.pending:  # commands in flight fail now rather than wait forever
                protocol.fail(RedisConnectionError("connection to Redis closed"))
            else:
                protocol.closed = True
                protocol.transport.close()
        for other in list(self._sockets):  # not closed yet: nothing may use it any more
            if other.transport is not None and not other.transport.is_closing():
                other.closed = True
                other.transport.abort()
        # A transport closes its socket in a callback of a later loop pass (after a
        # failure's abort() too): wait for it, or a loop closed right after this would
        # leave the socket open.
        if self._sockets:
            await asyncio.wait([other.gone for other in self._sockets], timeout=self._timeout)


def _ssl_context(params: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context a ``rediss://`` URL asks for (redis-py's query parameters)."""
    context = ssl.create_default_context(cafile=params.get("ssl_ca_certs"))
    if params.get("ssl_certfile"):
        context.load_cert_chain(params["ssl_certfile"], params.get("ssl_keyfile"))
    if str(params.get("ssl_cert_reqs", "required")).lower() in ("none", "cert_none"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Script:
    """A Lua script and its SHA-1, as EVALSHA names it."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
