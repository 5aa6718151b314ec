"""The connection the session store sends its scripts on, chosen by the Redis URL.

One interface, :class:`Transport` (``evalsha(script, keys, args, on_reply)``,
``close()``, and ``read_pending()`` for the cache), three topologies:

``redis://HOST:PORT/DB``, ``rediss://...`` (TLS), ``unix://PATH``
    One server: one auto-pipelined connection (:class:`sessions.autopipeline.AutoPipeline`).
``redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]``
    Redis Cluster (:class:`ClusterTransport`): one auto-pipelined connection per primary.
    Each script goes to the primary serving the slot of its first key (every script's
    keys share one hash tag, so they live in one slot). The slot map comes from
    ``CLUSTER SHARDS`` (``CLUSTER SLOTS`` before Redis 7) and is refreshed when a node
    answers ``MOVED``, drops or times out, at most every ``REFRESH_INTERVAL`` seconds.
    ``MOVED``, ``ASK`` (re-sent with ``ASKING`` adjacent on the target's connection)
    and ``TRYAGAIN`` are re-sent: Redis refused those commands, so they did not run. A
    timeout or a dropped connection fails the command and it is never re-sent: it may
    have run, and a counter must never be applied twice.
``redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``
    Redis Sentinel (:class:`SentinelTransport`): the primary's address is asked of the
    sentinels (``SENTINEL GET-MASTER-ADDR-BY-NAME``) and confirmed with ``ROLE`` on the
    new connection; it is asked again after a dropped connection, a timeout or a
    ``READONLY`` reply (the old primary was demoted). User and password are the data
    nodes'; the sentinels are asked without them.

The session cache stays exact on each: tracking is switched on on every data node's
connection, and any lost connection or change of topology (a slot served by another
node, another primary) tells the cache to forget everything (``on_invalidate(None)``).

:func:`check_url` connects once and describes what it found: ``server.py`` calls it
before it forks, so a bad URL stops the start with one clear line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessions.autopipeline import AutoPipeline, InvalidationHandler, ReplyHook, Script

SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"
SLOTS = 16384
MAX_REDIRECTS = 5  # MOVED/ASK/TRYAGAIN re-sends of one command
TRYAGAIN_PAUSE = 0.02  # seconds before re-sending after TRYAGAIN
REFRESH_INTERVAL = 0.25  # at most one slot-map refresh (or failed discovery) this often


class RedisURLError(ValueError):
    """The Redis URL cannot be used (scheme, addresses or service name)."""


class Transport(Protocol):
    """What the session store needs of a connection to Redis."""

    async def evalsha(
        self, script: Script, keys: list[str], args: list[Any], on_reply: ReplyHook | None = None
    ) -> Any:
        """Run ``script`` on the node that holds ``keys`` and return its reply; call
        ``on_reply`` with a successful reply the moment it is parsed. Raises redis-py's
        ``RedisError`` family."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...

    def read_pending(self) -> bool:
        """Handle every push and reply already sent on every connection; True when
        nothing is left unhandled (see ``AutoPipeline.read_pending``)."""
        ...


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def open_transport(
    url: str,
    *,
    timeout: float = 0.5,
    tracking_prefixes: Sequence[str] = (),
    on_invalidate: InvalidationHandler | None = None,
) -> Transport:
    """The transport for ``url`` (nothing connects until the first command)."""
    scheme = scheme_of(url)
    if scheme in SINGLE_SCHEMES:
        return AutoPipeline(
            url, timeout=timeout, tracking_prefixes=tracking_prefixes, on_invalidate=on_invalidate
        )
    if scheme == CLUSTER_SCHEME:
        where = parse_topology_url(url)
        return ClusterTransport(
            where.hosts,
            userinfo=where.userinfo,
            timeout=timeout,
            tracking_prefixes=tracking_prefixes,
            on_invalidate=on_invalidate,
        )
    if scheme == SENTINEL_SCHEME:
        where = parse_topology_url(url)
        return SentinelTransport(
            where.hosts,
            where.service,
            db=where.db,
            userinfo=where.userinfo,
            timeout=timeout,
            tracking_prefixes=tracking_prefixes,
            on_invalidate=on_invalidate,
        )
    raise _bad_scheme(url)


def _bad_scheme(url: str) -> RedisURLError:
    scheme = scheme_of(url)
    return RedisURLError(
        f"unsupported Redis URL scheme {scheme + '://' if scheme else url!r}: use redis://,"
        " rediss://, unix://, redis+cluster://HOST:PORT,... or"
        " redis+sentinel://HOST:PORT,.../SERVICE"
    )


async def check_url(url: str, *, timeout: float = 0.5) -> str:  # noqa: ASYNC109 - per command
    """Connect to what ``url`` names and say what answered; raise ``RedisURLError`` for a
    URL that cannot work and redis-py's ``RedisError`` when nothing usable answers."""
    transport = open_transport(url, timeout=timeout)
    try:
        if isinstance(transport, ClusterTransport):
            await transport.refresh_now()
            primaries = sorted(set(transport.slot_owners()))
            return f"Redis Cluster, {len(primaries)} primaries ({', '.join(primaries)})"
        if isinstance(transport, SentinelTransport):
            address = await transport.primary_address()
            return f"Redis Sentinel service {transport.service!r}, primary {address}"
        assert isinstance(transport, AutoPipeline)
        await transport.execute("PING")
        return "Redis"
    finally:
        await transport.close()


# ----- URLs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TopologyURL:
    """What a ``redis+cluster://`` or ``redis+sentinel://`` URL names."""

    scheme: str
    hosts: list[tuple[str, int]]  # seed nodes, or sentinels
    userinfo: str = ""  # "user:password" as written (percent-encoded)
    service: str = ""  # Sentinel only
    db: int = 0  # Sentinel only

    @property
    def username(self) -> str | None:
        name = self.userinfo.partition(":")[0]
        return unquote(name) if name else None

    @property
    def password(self) -> str | None:
        _, colon, password = self.userinfo.partition(":")
        return unquote(password) if colon else None


def parse_topology_url(url: str) -> TopologyURL:
    """Parse a ``redis+cluster://`` or ``redis+sentinel://`` URL (``RedisURLError`` if bad)."""
    scheme = scheme_of(url)
    if scheme not in (CLUSTER_SCHEME, SENTINEL_SCHEME):
        raise _bad_scheme(url)
    userinfo, hosts, path = _split(url)
    if scheme == CLUSTER_SCHEME:
        return TopologyURL(scheme, hosts, userinfo)
    service, db = _service_and_db(path)
    return TopologyURL(scheme, hosts, userinfo, service, db)


def _split(url: str) -> tuple[str, list[tuple[str, int]], str]:
    """``scheme://[userinfo@]host:port[,host:port...][/path]`` -> userinfo, hosts, path."""
    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    userinfo, _, hostlist = netloc.rpartition("@")
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisURLError(f"bad address {item!r} in the Redis URL (want HOST:PORT)")
        hosts.append((host, int(port)))
    return userinfo, hosts, path


def _service_and_db(path: str) -> tuple[str, int]:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise RedisURLError(
            "the redis+sentinel:// URL names no service: redis+sentinel://HOST:PORT,.../SERVICE[/DB]"
        )
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise RedisURLError(f"bad path {path!r} in the Redis URL (want /SERVICE[/DB])")
    return unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def _node_url(host: str, port: int, userinfo: str, db: int = 0) -> str:
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    credentials = f"{userinfo}@" if userinfo else ""
    return f"redis://{credentials}{netloc}/{db}"


class _Background:
    """Work run without waiting for it, kept referenced until done, cancelled on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[None]] = set()

    def __call__(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _quietly(work: asyncio.Future[Any]) -> None:
    """Wait for ``work``; its error is its waiters' business."""
    try:
        await work
    except (RedisError, asyncio.CancelledError):
        return


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_dict(value: Any) -> dict[str, Any]:
    """A RESP3 map (dict) or RESP2 flat list as a dict with text keys."""
    if isinstance(value, dict):
        return {_text(k): v for k, v in value.items()}
    return {_text(value[i]): value[i + 1] for i in range(0, len(value), 2)}


# ----- Redis Cluster --------------------------------------------------------------------
class ClusterTransport:
    """Scripts on Redis Cluster: one auto-pipelined connection per primary (see module)."""

    def __init__(
        self,
        seeds: Sequence[tuple[str, int]],
        *,
        userinfo: str = "",
        timeout: float = 0.5,
        tracking_prefixes: Sequence[str] = (),
        on_invalidate: InvalidationHandler | None = None,
    ) -> None:
        self._seeds = [f"{host}:{port}" for host, port in seeds]
        self._userinfo = userinfo
        self._timeout = timeout
        self._prefixes = list(tracking_prefixes)
        self._on_invalidate = on_invalidate
        self._slots: list[str | None] = [None] * SLOTS  # slot -> "host:port" of its primary
        self._nodes: dict[str, AutoPipeline] = {}
        self._retiring: set[AutoPipeline] = set()  # former primaries, closed soon
        self._refreshing: asyncio.Future[None] | None = None
        self._last_refresh = -REFRESH_INTERVAL
        self._background = _Background()
        self._closed = False
        #: How often the slot map changed, and commands re-sent after MOVED/ASK/TRYAGAIN.
        self.map_changes = 0
        self.redirects = 0

    def slot_owners(self) -> list[str]:
        """The primary of each slot ("host:port"; "" where none is known)."""
        return [owner or "" for owner in self._slots]

    def nodes(self) -> dict[str, AutoPipeline]:
        """The connection to each primary, by address."""
        return dict(self._nodes)

    def read_pending(self) -> bool:
        done = True
        for node in self._nodes.values():  # every node's pushes, not only the first's
            done = node.read_pending() and done
        return done

    def node_for(self, key: str) -> str | None:
        """The primary that serves ``key``, as the slot map says."""
        return self._slots[key_slot(key.encode())]

    def _node(self, address: str) -> AutoPipeline:
        node = self._nodes.get(address)
        if node is None:
            host, _, port = address.rpartition(":")
            node = AutoPipeline(
                _node_url(host, int(port), self._userinfo),
                timeout=self._timeout,
                tracking_prefixes=self._prefixes,
                on_invalidate=self._on_invalidate,
                on_disconnect=self.schedule_refresh,
            )
            self._nodes[address] = node
        return node

    def _flush(self) -> None:
        self.map_changes += 1
        if self._on_invalidate is not None:
            self._on_invalidate(None)  # a slot has another owner: forget every entry

    async def evalsha(
        self, script: Script, keys: list[str], args: list[Any], on_reply: ReplyHook | None = None
    ) -> Any:
        slot = key_slot(keys[0].encode())
        address = self._slots[slot]
        if address is None:
            await self.refresh_now()
            address = self._slots[slot]
            if address is None:
                raise RedisConnectionError(f"no Redis Cluster node serves slot {slot}")
        asking = False
        for _ in range(MAX_REDIRECTS):
            try:
                node = self._node(address)
                return await node.evalsha(script, keys, args, on_reply, asking=asking)
            except ResponseError as exc:
                message = str(exc)
                kind = message.split(" ", 1)[0]
                if kind == "MOVED":  # the slot has a new owner: go there, refresh the map
                    target = self._redirect_target(message, address)
                    if self._slots[slot] != target:
                        self._slots[slot] = target
                        self._flush()
                    address, asking = target, False
                    self.schedule_refresh()
                elif kind == "ASK":  # the slot is migrating; this key is on the target
                    address, asking = self._redirect_target(message, address), True
                elif kind == "TRYAGAIN":  # keys split by a migration: wait, send again
                    await asyncio.sleep(TRYAGAIN_PAUSE)
                else:
                    if kind == "CLUSTERDOWN":
                        self.schedule_refresh()
                    raise
                self.redirects += 1
            except (RedisConnectionError, RedisTimeoutError):
                self.schedule_refresh()  # never re-sent: it may have run
                raise
        raise ResponseError(f"Redis Cluster redirected slot {slot} {MAX_REDIRECTS} times")

    @staticmethod
    def _redirect_target(message: str, current: str) -> str:
        target = message.split()[2]  # "MOVED <slot> <host>:<port>"
        if target.startswith(":"):  # host unknown to the node: the one that answered
            target = current.rpartition(":")[0] + target
        return target

    # ----- the slot map ---------------------------------------------------------------
    def schedule_refresh(self) -> None:
        """Refresh the slot map in the background (one at a time, rate-limited)."""
        if self._closed or (self._refreshing is not None and not self._refreshing.done()):
            return
        self._refreshing = self._background(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except RedisError:
            return  # the next failing command schedules another try

    async def refresh_now(self) -> None:
        """Wait for a slot-map refresh (the one in progress, or a new one)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = self._background(self._refresh())
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last_refresh + REFRESH_INTERVAL - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_refresh = loop.time()
        candidates = list(dict.fromkeys([*filter(None, self._slots), *self._seeds, *self._nodes]))
        errors: list[str] = []
        for address in candidates:
            if self._closed:
                return
            try:
                slots = await self._fetch_map(self._node(address))
            except RedisError as exc:
                errors.append(f"{address}: {exc}")
                continue
            self._install(slots)
            return
        raise RedisConnectionError(
            "no Redis Cluster node answered: " + "; ".join(errors or ["no address"])
        )

    async def _fetch_map(self, node: AutoPipeline) -> list[str | None]:
        slots: list[str | None] = [None] * SLOTS
        try:
            shards = await node.execute("CLUSTER", "SHARDS")
        except ResponseError as exc:
            if "unknown" not in str(exc).lower():
                raise
            for entry in await node.execute("CLUSTER", "SLOTS"):  # Redis 6
                start, end, primary = int(entry[0]), int(entry[1]), entry[2]
                address = f"{_text(primary[0])}:{int(primary[1])}"
                slots[start : end + 1] = [address] * (end - start + 1)
            return slots
        for raw_shard in shards:
            shard = _as_dict(raw_shard)
            primary = None
            for raw_node in shard["nodes"]:
                info = _as_dict(raw_node)
                if _text(info.get("role", "")) == "master":
                    host = _text(info.get("endpoint") or info.get("ip") or "")
                    if host in ("", "?"):
                        host = _text(info.get("ip", ""))
                    primary = f"{host}:{int(info['port'])}"
            ranges = [int(x) for x in shard["slots"]]
            if primary is None:
                continue
            for i in range(0, len(ranges), 2):
                start, end = ranges[i], ranges[i + 1]
                slots[start : end + 1] = [primary] * (end - start + 1)
        return slots

    def _install(self, slots: list[str | None]) -> None:
        old = self._slots
        self._slots = slots
        if any(o is not None and o != n for o, n in zip(old, slots, strict=True)):
            self._flush()
        primaries = set(filter(None, slots))
        for address in list(self._nodes):
            if address not in primaries:  # a node no longer primary: close its connection
                node = self._nodes.pop(address)
                self._retiring.add(node)
                self._background(self._retire(node))
        for address in primaries:  # connect to every primary now: tracking on each
            self._background(self._warm(self._node(address)))

    async def _retire(self, node: AutoPipeline) -> None:
        """Close a former primary's connection once what is in flight on it has been
        answered (a ``MOVED`` is then followed) or has timed out."""
        try:
            await asyncio.sleep(self._timeout)
        finally:
            self._retiring.discard(node)
            await node.close()

    @staticmethod
    async def _warm(node: AutoPipeline) -> None:
        try:
            await node.connect()
        except RedisError:
            return  # the first command to that node will tell

    async def close(self) -> None:
        self._closed = True
        await self._background.cancel()
        nodes, self._nodes = [*self._nodes.values(), *self._retiring], {}
        self._retiring = set()
        for node in nodes:
            await node.close()


# ----- Redis Sentinel -------------------------------------------------------------------
class SentinelTransport:
    """Scripts on the primary the sentinels name (see module)."""

    def __init__(
        self,
        sentinels: Sequence[tuple[str, int]],
        service: str,
        *,
        db: int = 0,
        userinfo: str = "",
        timeout: float = 0.5,
        tracking_prefixes: Sequence[str] = (),
        on_invalidate: InvalidationHandler | None = None,
    ) -> None:
        self.service = service
        self._sentinels = [
            AutoPipeline(_node_url(host, port, ""), timeout=timeout) for host, port in sentinels
        ]
        self._names = [f"{host}:{port}" for host, port in sentinels]
        self._db = db
        self._userinfo = userinfo
        self._timeout = timeout
        self._prefixes = list(tracking_prefixes)
        self._on_invalidate = on_invalidate
        self._primary: AutoPipeline | None = None
        self._address = ""
        self._discovering: asyncio.Future[AutoPipeline] | None = None
        self._failure: tuple[float, RedisError] | None = None
        self._background = _Background()
        self._closed = False
        #: How often the primary was (re)discovered.
        self.discoveries = 0

    def nodes(self) -> dict[str, AutoPipeline]:
        """The connection to the current primary, by address (empty before discovery)."""
        return {self._address: self._primary} if self._primary is not None else {}

    def read_pending(self) -> bool:
        primary = self._primary
        return True if primary is None else primary.read_pending()

    async def primary_address(self) -> str:
        """Discover the primary (if not known) and return its "host:port"."""
        await self._current()
        return self._address

    async def evalsha(
        self, script: Script, keys: list[str], args: list[Any], on_reply: ReplyHook | None = None
    ) -> Any:
        primary = self._primary or await self._current()
        try:
            return await primary.evalsha(script, keys, args, on_reply)
        except (RedisConnectionError, RedisTimeoutError):
            self._forget(primary)  # never re-sent: it may have run
            raise
        except ResponseError as exc:
            if "READONLY" in str(exc):  # a demoted primary: ask the sentinels again
                self._forget(primary)
            raise

    def _forget(self, primary: AutoPipeline) -> None:
        if self._primary is not primary:
            return
        self._primary = None
        self._background(primary.close())
        if self._on_invalidate is not None:
            self._on_invalidate(None)

    async def _current(self) -> AutoPipeline:
        if self._primary is not None:
            return self._primary
        failure = self._failure
        if failure is not None and time.monotonic() - failure[0] < REFRESH_INTERVAL:
            raise failure[1]  # asked moments ago: do not hammer the sentinels
        if self._discovering is None or self._discovering.done():
            self._discovering = asyncio.ensure_future(self._discover())
            self._background(_quietly(self._discovering))
        discovering = self._discovering
        try:
            return await asyncio.shield(discovering)
        except RedisError as exc:
            self._failure = (time.monotonic(), exc)
            raise

    async def _discover(self) -> AutoPipeline:
        errors: list[str] = []
        for name, sentinel in zip(self._names, self._sentinels, strict=True):
            try:
                reply = await sentinel.execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except RedisError as exc:
                errors.append(f"sentinel {name}: {exc}")
                continue
            if not reply:
                errors.append(f"sentinel {name} knows no service {self.service!r}")
                continue
            host, port = _text(reply[0]), int(reply[1])
            primary = self._connect_primary(host, port)
            try:
                role = await primary.execute("ROLE")
            except RedisError as exc:
                await primary.close()
                errors.append(f"primary {host}:{port} (from sentinel {name}): {exc}")
                continue
            if _text(role[0]) != "master":
                await primary.close()
                errors.append(f"{host}:{port} (from sentinel {name}) is a {_text(role[0])}")
                continue
            if self._closed:
                await primary.close()
                break
            self._primary, self._address, self._failure = primary, f"{host}:{port}", None
            self.discoveries += 1
            if self._on_invalidate is not None:
                self._on_invalidate(None)  # a new primary: nothing cached is known current
            return primary
        raise RedisConnectionError(
            f"no primary for Sentinel service {self.service!r}: " + "; ".join(errors)
        )

    def _connect_primary(self, host: str, port: int) -> AutoPipeline:
        holder: list[AutoPipeline] = []
        primary = AutoPipeline(
            _node_url(host, port, self._userinfo, self._db),
            timeout=self._timeout,
            tracking_prefixes=self._prefixes,
            on_invalidate=self._on_invalidate,
            on_disconnect=lambda: self._forget(holder[0]),  # rediscover, never reconnect
        )
        holder.append(primary)
        return primary

    async def close(self) -> None:
        self._closed = True
        if self._discovering is not None:
            self._discovering.cancel()
        await self._background.cancel()
        primary, self._primary = self._primary, None
        if primary is not None:
            await primary.close()
        for sentinel in self._sentinels:
            await sentinel.close()


__all__ = [
    "ClusterTransport",
    "RedisURLError",
    "SentinelTransport",
    "TopologyURL",
    "Transport",
    "check_url",
    "open_transport",
    "parse_topology_url",
]
