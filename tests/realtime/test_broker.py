"""The Redis broker between server processes: envelopes arrive complete and in order however
they are batched, and a process learns which room leases it lost.

Needs Redis (REDIS_URL) — skipped without it, which fails in CI.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis

from realtime.broker import PUBLISH_BATCH, RedisBroker

pytestmark = pytest.mark.anyio


@pytest.fixture
async def brokers(redis_url: str):  # type: ignore[no-untyped-def]
    prefix = f"t-broker-{uuid.uuid4().hex[:8]}"
    made = [RedisBroker(redis_url, prefix=prefix, process_id=name, lease_ms=1500) for name in ("a", "b")]
    yield made
    for broker in made:
        await broker.stop()
    r = redis.from_url(redis_url)
    for key in r.scan_iter(f"{prefix}:*"):
        r.delete(key)


async def test_a_burst_of_envelopes_arrives_complete_and_in_order(brokers):
    a, b = brokers
    received: list[dict[str, Any]] = []
    done = asyncio.Event()
    total = 5 * PUBLISH_BATCH + 7  # several pipelines, the last one partial

    async def on_envelope(envelope: dict[str, Any]) -> None:
        received.append(envelope)
        if len(received) == total:
            done.set()

    await b.start(on_envelope)
    await a.start(lambda envelope: asyncio.sleep(0))
    for n in range(total):  # all queued at once, as a room's broadcast burst is
        a.publish("b", {"op": "send", "conns": [n % 10], "frame": f"khung số {n}"})
    await asyncio.wait_for(done.wait(), timeout=20)
    assert [e["frame"] for e in received] == [f"khung số {n}" for n in range(total)]
    assert received[-1] == {"op": "send", "conns": [(total - 1) % 10], "frame": f"khung số {total - 1}"}


async def test_renewal_reports_only_the_rooms_whose_lease_was_lost(brokers):
    a, b = brokers
    assert await a.claim(1) == "a" and await a.claim(2) == "a"
    assert await b.claim(2) == "a"  # taken: b learns the owner
    assert await a.renew([1, 2]) == []
    await asyncio.sleep(1.7)  # a stopped renewing: both leases ran out
    assert await b.claim(2) == "b"
    assert await a.renew([1, 2]) == [1, 2]  # room 1 expired too; room 2 is b's now
    assert await a.renew([]) == []
