"""Password hashing without services: equal time after a cost change (issue 8, item 9),
the rehash decision, and the bounded hashing queue (item 3)."""

from __future__ import annotations

import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bcrypt
import pytest

from accounts.passwords import HashingBusy, PasswordHasher, hash_cost, make_dummy_hash

ROUNDS = 9  # about 30 ms here: long enough to time, short enough for the suite


def run(coroutine: Any) -> Any:
    """Run on a loop of its own, closed at once, leaving the current loop alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def median_seconds(
    hasher: PasswordHasher, hashes: list[bytes | None], runs: int = 7
) -> list[float]:
    """Median time of a wrong password against each of ``hashes``, measured interleaved
    so that other load on the machine weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in hashes]
    for _ in range(runs):
        for i, hashed in enumerate(hashes):
            started = time.perf_counter()
            assert run(hasher.verify("wrong horse", hashed)) is False
            times[i].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def test_unknown_and_known_accounts_take_as_long_after_the_cost_was_raised():
    """Hashes made at cost 4, the server now at 9: a wrong password for such an account
    took 1/32 of the time of an unknown e-mail (checked against a cost-9 dummy)."""
    hasher = PasswordHasher(None, rounds=ROUNDS, dummy_hash=make_dummy_hash(ROUNDS))
    old = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(4))
    current = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(ROUNDS))
    unknown, known_old, known_current = median_seconds(hasher, [None, old, current])
    # Before: known_old / unknown was 1/32 (2^4 against 2^9 rounds).
    assert 0.6 < known_old / unknown < 1.6, (known_old, unknown)
    assert 0.6 < known_current / unknown < 1.6, (known_current, unknown)
    assert run(hasher.verify("correct horse", old)) is True


def test_rehash_is_wanted_exactly_when_the_cost_differs():
    hasher = PasswordHasher(None, rounds=5, dummy_hash=make_dummy_hash(5))
    assert hash_cost(bcrypt.hashpw(b"x", bcrypt.gensalt(5))) == 5
    assert not hasher.needs_rehash(bcrypt.hashpw(b"x", bcrypt.gensalt(5)))
    assert hasher.needs_rehash(bcrypt.hashpw(b"x", bcrypt.gensalt(4)))
    assert hasher.needs_rehash(bcrypt.hashpw(b"x", bcrypt.gensalt(6)))


def test_the_hashing_queue_is_bounded_and_new_hashes_leave_room_for_sign_ins():
    async def flood() -> tuple[list[object], list[object]]:
        with ThreadPoolExecutor(1) as pool:
            dummy = make_dummy_hash(4)
            hasher = PasswordHasher(pool, rounds=8, dummy_hash=dummy, queue_size=6)
            signups = [asyncio.ensure_future(hasher.hash("correct horse")) for _ in range(10)]
            await asyncio.sleep(0)
            signins = [asyncio.ensure_future(hasher.verify("x", None)) for _ in range(10)]
            return (
                await asyncio.gather(*signups, return_exceptions=True),
                await asyncio.gather(*signins, return_exceptions=True),
            )

    signups, signins = run(flood())
    assert sum(isinstance(r, bytes) for r in signups) == 3  # half of the queue
    assert sum(isinstance(r, HashingBusy) for r in signups) == 7
    assert signins.count(False) == 3  # the rest of it
    assert sum(isinstance(r, HashingBusy) for r in signins) == 7


@pytest.mark.parametrize("queue_size", [0, 10])
def test_no_refusal_within_the_bound(queue_size):
    async def some() -> list[bytes]:
        with ThreadPoolExecutor(2) as pool:
            hasher = PasswordHasher(pool, rounds=4, dummy_hash=b"", queue_size=queue_size)
            return await asyncio.gather(*(hasher.hash("correct horse") for _ in range(5)))

    assert len(run(some())) == 5  # new hashes may fill half of a queue of 10
