"""Findings 12.2 and 12.6 across server processes (two processes over Redis, one room).

* A logout handled by process A closes the member's room socket on process B at once — long
  before the 30-second periodic check — because the event reaches every process.
* A join token used on A is refused on B (the used nonces are in the shared database).
* A member hopping between the processes gets one chat allowance: the room lives on one
  process, and counts per member there.

Needs Redis (REDIS_URL; CI sets it) — skipped without it, which fails in CI. One test, so that
the two servers start once.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from meetings.proceedings.chat import ChatMessage
from tests.realtime.test_cluster import cluster  # noqa: F401 (the two-process fixture)
from tests.support.redis import redis_url  # noqa: F401 (a fixture the cluster needs)
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD

pytestmark = pytest.mark.anyio


async def logout(client: RoomClient) -> int:
    page = await client.http.get("/")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return (await client.http.post("/logout", data={"csrf_token": token})).status_code


async def test_sessions_tokens_and_chat_limits_hold_across_processes(cluster, room_world, sqlite_database):  # noqa: F811
    (a, b), _ = cluster
    meeting = room_world.meeting_id
    clients: list[RoomClient] = []

    def client(server, username: str) -> RoomClient:  # type: ignore[no-untyped-def]
        c = RoomClient(server.base, username, PASSWORD, meeting, media=False)
        clients.append(c)
        return c

    try:
        # A token used on A is refused on B.
        on_a, on_b = client(a, "away_a"), client(b, "away_a")
        await on_a.login()
        token = await on_a.join_token()
        await on_a.connect(token=token)
        await on_a.wait_for("welcome")
        on_b.http.cookies = on_a.http.cookies
        await on_b.connect(token=token)
        assert "đã được dùng" in (await on_b.wait_for("error"))["message"]
        assert await on_b.wait_closed() == 4401

        # Hopping between processes: one chat allowance for the member.
        started = time.monotonic()
        for hop in range(6):
            server = (a, b)[hop % 2]
            hopper = client(server, "away_a")
            hopper.http.cookies = on_a.http.cookies
            await hopper.connect()
            await hopper.wait_for("welcome")
            for n in range(20):
                await hopper.send({"type": "chat", "text": f"tràn {hop}-{n}"})
            await hopper.wait_for("error", code="rate_limited", timeout=10)
            await hopper.drop()
        elapsed = time.monotonic() - started
        with sqlite_database.session() as s:
            count = s.scalar(select(func.count()).select_from(ChatMessage)
                             .where(ChatMessage.member_id == room_world.world.id("a4")))
        assert count <= 5 + elapsed + 1, (count, elapsed)

        # The chair's socket is on B; the chair logs out through A.
        chair_b = client(b, "sec_a")
        await chair_b.join()
        chair_a = client(a, "sec_a")
        chair_a.http.cookies = chair_b.http.cookies
        assert await logout(chair_a) == 303
        assert (await chair_b.wait_for("error", code="session_ended", timeout=5))
        assert await chair_b.wait_closed(timeout=5) == 4401
    finally:
        for c in clients:
            await c.close()
