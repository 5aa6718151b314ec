"""The session store's auto-pipelined Redis connection against real Redis and bad peers."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import redis
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessions.autopipeline import AutoPipeline, Script
from tests.support.server_process import free_port


@pytest.fixture
def key(redis_prefix):
    return redis_prefix + "autopipeline"


@pytest.mark.gen_test
async def test_replies_match_requests_under_concurrency_and_db_is_selected(
    redis_url, key, sync_redis
):
    pipe = AutoPipeline(redis_url)
    try:
        results = await asyncio.gather(
            *(pipe.execute("INCR", key) for _ in range(500)),
            *(pipe.execute("ECHO", str(i)) for i in range(500)),
        )
        assert sorted(results[:500]) == list(range(1, 501))
        assert results[500:] == [str(i).encode() for i in range(500)]
        assert sync_redis.get(key) == "500"  # the URL's database (9), not 0
    finally:
        await pipe.close()


@pytest.mark.gen_test
async def test_error_replies_raise_without_breaking_the_connection(redis_url, key):
    pipe = AutoPipeline(redis_url)
    try:
        await pipe.execute("SET", key, "text")
        with pytest.raises(ResponseError):
            await pipe.execute("INCR", key)
        assert await pipe.execute("GET", key) == b"text"
    finally:
        await pipe.close()


@pytest.mark.gen_test
async def test_script_reloads_after_script_flush(redis_url, sync_redis):
    pipe = AutoPipeline(redis_url)
    script = Script("return 'loaded-' .. ARGV[1]")
    try:
        sync_redis.script_flush()
        assert await pipe.evalsha(script, [], ["x"]) == b"loaded-x"
        assert await pipe.evalsha(script, [], ["y"]) == b"loaded-y"
    finally:
        await pipe.close()


@pytest.mark.gen_test
async def test_killed_connection_fails_in_flight_then_reconnects(redis_url, key):
    pipe = AutoPipeline(redis_url, timeout=2)
    admin = redis.Redis.from_url(redis_url)
    try:
        client_id = await pipe.execute("CLIENT", "ID")
        blocked = asyncio.ensure_future(pipe.execute("BLPOP", key + ":never", 1))
        await asyncio.sleep(0.05)
        admin.client_kill_filter(_id=client_id)
        with pytest.raises(RedisConnectionError):
            await blocked
        assert await pipe.execute("PING") == b"PONG"  # a new connection
        assert await pipe.execute("CLIENT", "ID") != client_id
    finally:
        admin.close()
        await pipe.close()


@pytest.mark.gen_test
async def test_refused_connection_fails_fast():
    pipe = AutoPipeline(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await pipe.execute("PING")
    assert time.monotonic() - started < 0.5


@pytest.mark.gen_test
async def test_silent_peer_times_out_within_the_bound():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    port = listener.getsockname()[1]
    pipe = AutoPipeline(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(pipe.execute("PING") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results)
        assert time.monotonic() - started < 1.0
    finally:
        await pipe.close()
        listener.close()


def _peer_sees_close(conn: socket.socket) -> bool:
    """Whether the other end closed ``conn``, waiting (and blocking the loop) 1 s at most:
    a socket the pipeline left for a later loop pass stays open meanwhile."""
    conn.settimeout(1)
    try:
        while conn.recv(65536):
            pass  # the commands it sent
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


@pytest.mark.gen_test
async def test_close_right_after_a_failure_or_during_setup_closes_the_socket(redis_url):
    # A connection found closed by read_pending is dropped at once; close() right after
    # closes its socket (the transport does it a loop pass later).
    pipe = AutoPipeline(redis_url, timeout=2)
    admin = redis.Redis.from_url(redis_url)
    try:
        client_id = await pipe.execute("CLIENT", "ID")
        sock = pipe._protocol.transport.get_extra_info("socket")
        admin.client_kill_filter(_id=client_id)
        time.sleep(0.1)  # noqa: ASYNC251 - the close reaches the socket, the loop must not run
        assert pipe.read_pending()
        await pipe.close()
        assert sock.fileno() == -1
    finally:
        admin.close()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    port = listener.getsockname()[1]
    try:
        # A connection still being set up (HELLO unanswered) when close() is called.
        pipe = AutoPipeline(f"redis://127.0.0.1:{port}/0", timeout=5)
        command = asyncio.ensure_future(pipe.execute("PING"))
        await asyncio.sleep(0.1)
        await pipe.close()
        conn, _ = listener.accept()
        with conn:
            assert _peer_sees_close(conn)
        (result,) = await asyncio.gather(command, return_exceptions=True)
        assert isinstance(result, asyncio.CancelledError | RedisConnectionError)
    finally:
        listener.close()


@pytest.mark.gen_test
async def test_a_cancelled_caller_does_not_shift_later_replies(redis_url):
    pipe = AutoPipeline(redis_url)
    try:
        first = asyncio.ensure_future(pipe.execute("ECHO", "first"))
        second = asyncio.ensure_future(pipe.execute("ECHO", "second"))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == b"second"
        assert await pipe.execute("ECHO", "third") == b"third"
    finally:
        await pipe.close()


def test_runs_under_uvloop(redis_url, key, sync_redis):
    """uvloop's transports are not asyncio.Transport subclasses: the connection only uses
    their interface (and reads pending pushes through their socket)."""

    key = key + ":uvloop"

    async def main() -> list[object]:
        invalidated: list[object] = []
        pipe = AutoPipeline(redis_url, tracking_prefixes=[key], on_invalidate=invalidated.append)
        try:
            assert await pipe.execute("PING") == b"PONG"
            counts = await asyncio.gather(*(pipe.execute("INCR", key) for _ in range(100)))
            assert sorted(counts) == list(range(1, 101))
            await pipe.execute("GET", key)  # tracked from now on
            sync_redis.set(key, "changed")  # another connection
            await pipe.execute("PING")  # its push comes before this reply
            assert pipe.read_pending()
            return invalidated
        finally:
            await pipe.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        invalidated = runner.run(main())
    assert invalidated == [[key.encode()]]


@pytest.mark.gen_test
async def test_closing_fails_commands_in_flight_instead_of_leaving_them_waiting(redis_url, key):
    pipe = AutoPipeline(redis_url, timeout=10)
    waiting = asyncio.ensure_future(pipe.execute("BLPOP", key + ":empty", 5))
    await asyncio.sleep(0.2)  # sent; Redis holds it
    started = time.monotonic()
    await pipe.close()
    with pytest.raises(RedisConnectionError, match="closed"):
        await asyncio.wait_for(waiting, 2)
    assert time.monotonic() - started < 1
