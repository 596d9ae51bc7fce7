"""Two server processes serve one room over Redis: shared presence, chat, hands and votes,
and the room moves to the surviving process when its owner dies.

Needs Redis (REDIS_URL; CI sets it and starts Redis) — skipped without it, which fails in CI.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest
import redis

from meetings.foundation.base import utcnow
from meetings.planning.meetings import Meeting, RemoteInvite
from meetings.proceedings import attendance, presence
from tests.support.room_fixtures import free_port
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD

pytestmark = pytest.mark.anyio

class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
            env={**env, "PUBLIC_URL": self.base}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def ready(self) -> None:
        import httpx2

        async with httpx2.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"{self.base}/healthz")).status_code == 200:
                        return
                except httpx2.HTTPError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode())
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if os.environ.get("CLUSTER_DEBUG"):
            if self.proc.poll() is None:
                self.proc.terminate()
            print(self.proc.stderr.read().decode()[-5000:])
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
async def cluster(redis_url, sqlite_database, room_world, tmp_path):  # type: ignore[no-untyped-def]
    with sqlite_database.session() as s:
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=room_world.world.id("a2")))
    prefix = f"chibo-test-{uuid.uuid4().hex[:8]}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": str(sqlite_database.engine.url),
           "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "cluster-test-secret-0123456789",
           "REDIS_URL": redis_url, "REDIS_PREFIX": prefix, "LOG_REQUESTS": "false", "ROOM_GRACE_SECONDS": "30"}
    servers = [Server(env), Server(env)]
    try:
        await asyncio.gather(*(s.ready() for s in servers))
        yield servers, prefix
    finally:
        for server in servers:
            server.stop()
        r = redis.from_url(redis_url)
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)


async def test_two_processes_share_one_room(cluster, room_world, sqlite_database):
    (a, b), _ = cluster
    meeting = room_world.meeting_id
    chair = RoomClient(a.base, "sec_a", PASSWORD, meeting, media=False)
    away = RoomClient(b.base, "away_a", PASSWORD, meeting, media=False)
    member = RoomClient(b.base, "mem_a", PASSWORD, meeting, media=False)
    clients = [chair, away, member]
    try:
        for client in clients:
            await client.join()
        ids = {f"m{room_world.world.id(k)}" for k in ("a1", "a4", "a2")}
        welcome = await member.wait_for("welcome")
        assert {p["id"] for p in welcome["participants"]} == ids
        await chair.wait_for("joined", timeout=10)
        # Chat from process A reaches process B, and the other way.
        await chair.send({"type": "chat", "text": "Chào các đồng chí ở xa"})
        assert (await away.wait_for("chat"))["message"]["text"] == "Chào các đồng chí ở xa"
        await away.send({"type": "chat", "text": "Em nghe rõ"})
        await chair.wait_until(lambda m: m["type"] == "chat" and m["message"]["text"] == "Em nghe rõ")
        # Hands raised on B are in the chair's queue on A, in order.
        await member.send({"type": "hand", "raised": True})
        await away.send({"type": "hand", "raised": True})
        await chair.wait_for("hands", queue=[f"m{room_world.world.id('a2')}", f"m{room_world.world.id('a4')}"])
        # A vote opened on A, cast on B.
        await chair.send({"type": "open_vote", "title": "Biểu quyết liên máy chủ", "kind": "open"})
        motion = (await away.wait_for("vote"))["motion"]
        await away.send({"type": "cast", "motion_id": motion["id"], "choice": "agree"})
        await away.wait_for("vote_cast")
        await chair.send({"type": "close_vote", "motion_id": motion["id"]})
        closed = await member.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed")
        assert closed["motion"]["result"]["agree"] == 1
        with sqlite_database.session() as s:
            members = {i.member_id for i in presence.intervals(s, meeting)}
        assert members == {room_world.world.id(k) for k in ("a1", "a4", "a2")}
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_room_moves_to_the_survivor_when_its_owner_dies(cluster, room_world, sqlite_database, redis_url):
    (a, b), prefix = cluster
    meeting = room_world.meeting_id
    first = RoomClient(a.base, "sec_a", PASSWORD, meeting, media=False)
    await first.join()  # A claims the room
    owner = redis.from_url(redis_url, decode_responses=True).get(f"{prefix}:room:{meeting}:owner")
    assert owner
    on_b = RoomClient(b.base, "away_a", PASSWORD, meeting, media=False)
    clients = [first, on_b]
    try:
        await on_b.join()
        assert (await on_b.wait_for("welcome"))["resumed"] is False
        a.kill()  # the owner dies without a word
        on_b.messages.clear()
        # Within the lease time B takes the room over and welcomes its participant again
        # (a new room state; presence continues).
        welcome = await on_b.wait_for("welcome", timeout=20)
        assert welcome["you"] == f"m{room_world.world.id('a4')}"
        new_owner = redis.from_url(redis_url, decode_responses=True).get(f"{prefix}:room:{meeting}:owner")
        assert new_owner and new_owner != owner
        # The chair, cut off with process A, comes back through B.
        back = RoomClient(b.base, "sec_a", PASSWORD, meeting, media=False)
        clients.append(back)
        await back.join()
        await back.send({"type": "chat", "text": "Đã kết nối lại"})
        assert (await on_b.wait_for("chat", timeout=10))["message"]["text"] == "Đã kết nối lại"
        with sqlite_database.session() as s:
            events = [(e.member_id, e.kind.value) for e in presence.events(s, meeting)]
            online = attendance.online_presence(s, s.get(Meeting, meeting), utcnow())
        a4 = room_world.world.id("a4")
        # The new owner ended what the dead one left open at its last heartbeat; the member's
        # return seconds later is one stretch of presence (decision 6).
        assert events.count((a4, "join")) == 2 and (a4, "lost") in events
        assert len(online[a4].spans) == 1
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
