"""Two server processes serve one room over Redis: shared presence, chat, hands and votes,
and the room moves to the surviving process when its owner dies. Secret ballots cross Redis
sealed, and a ballot whose box dies with its process (kill -9) is run again.

Needs Redis (REDIS_URL; CI sets it and starts Redis) — skipped without it, which fails in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import select

from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import utcnow
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting, RemoteInvite
from meetings.proceedings import attendance, chat, presence, votes
from tests.support import inspector
from tests.support.inspector import CHOICES
from tests.support.room_fixtures import free_port
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD, add_voters

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


def _ballot(rng: random.Random, voters: list[int]) -> tuple[dict[int, str], list[int]]:
    """Random choices, as many of each, and a random order to cast them in."""
    choices = [c for c in CHOICES for _ in range(len(voters) // len(CHOICES))]
    rng.shuffle(choices)
    order = list(voters)
    rng.shuffle(order)
    return dict(zip(voters, choices, strict=True)), order


async def _cast_all(clients: dict[int, RoomClient], motion_id: int, truth: dict[int, str], order: list[int]) -> None:
    for member_id in order:
        choice = truth[member_id]
        await clients[member_id].send({"type": "cast", "motion_id": motion_id, "choice": choice,
                                       "pad": " " * (8 - len(choice))})
        await clients[member_id].wait_for("vote_cast", motion_id=motion_id)


def _redis_observations(traffic: list[tuple[str, str]], prefix: str) -> list[inspector.Observation]:
    """What a reader of the Redis traffic can pair: each envelope, with the voters it names
    (``pid`` of a front's message; the sockets an owner's frame goes to, known from the
    ``join`` envelopes) and the choices written in it."""
    sockets: dict[tuple[str, int], int] = {}
    seen = []
    for channel, data in traffic:
        process = channel.removeprefix(f"{prefix}:proc:")
        for envelope in json.loads(data):
            if envelope["op"] == "join" and envelope["identity"]["member_id"] is not None:
                sockets[(envelope["proc"], envelope["conn"])] = envelope["identity"]["member_id"]
            voters = set()
            if envelope["op"] == "msg" and envelope["pid"].startswith("m"):
                voters = {int(envelope["pid"][1:])}
            elif envelope["op"] == "send":
                voters = {sockets[(process, c)] for c in envelope["conns"] if (process, c) in sockets}
            body = json.dumps(envelope)
            seen.append(inspector.Observation(voters=voters, delta={
                c: body.count(f'\\"choice\\":\\"{c}\\"') + body.count(f'"choice": "{c}"') for c in CHOICES}))
    return seen


async def test_secret_ballot_crosses_redis_sealed_and_is_run_again_when_its_owner_dies(
        cluster, room_world, sqlite_database, redis_url):
    """The owner holds the ballot box; the voters are on the other process. Nothing on Redis
    pairs a voter with a choice, and the votes page on the other process closes it. Then the
    owner is killed (-9) with the ballots of a second ballot in its box: the survivor voids
    that ballot, opens it again and tells everyone; the new one counts."""
    (a, b), prefix = cluster
    meeting = room_world.meeting_id
    with sqlite_database.session() as s:
        voters = add_voters(s, s.get(Organisation, room_world.world.id("A")), meeting, 3)
    listener = aioredis.from_url(redis_url, decode_responses=True)
    pubsub = listener.pubsub()
    await pubsub.psubscribe(f"{prefix}:proc:*")
    traffic: list[tuple[str, str]] = []

    async def record() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                traffic.append((message["channel"], message["data"]))

    recorder = asyncio.create_task(record())
    chair = RoomClient(a.base, "sec_a", PASSWORD, meeting, media=False)
    clients = {m: RoomClient(b.base, user, PASSWORD, meeting, media=False) for m, (user, _) in voters.items()}
    everyone = [chair, *clients.values()]
    try:
        await chair.join()  # A owns the room, and so the ballot box
        for client in clients.values():  # one by one: each login costs a full Argon2id hash there
            await client.join()
        rng = random.Random(14)
        truth, order = _ballot(rng, list(voters))
        await chair.send({"type": "open_vote", "title": "Bầu chi ủy viên", "kind": "secret"})
        first = (await chair.wait_for("vote"))["motion"]["id"]
        await _cast_all(clients, first, truth, order)
        await chair.wait_until(lambda m: m["type"] == "vote" and m["motion"]["voted"] == len(voters))

        # Every cast crossed Redis sealed, all of one length; no envelope pairs voter and choice.
        envelopes = [e for _, data in traffic for e in json.loads(data)]
        sealed = [e["sealed"] for e in envelopes if e["op"] == "msg" and "sealed" in e]
        assert len(sealed) == len(voters) and len({len(x) for x in sealed}) == 1
        assert not [e for e in envelopes if e["op"] == "msg" and '"cast"' in e.get("frame", "")]
        result = dict(Counter(truth.values()))
        seen = _redis_observations(traffic, prefix)
        assert any(o.voters for o in seen)
        assert inspector.accuracy(inspector.link(seen), truth, result) <= inspector.chance(truth, result)
        # The secretary closes it from the votes page served by B: A, which holds the box, counts.
        page = RoomClient(b.base, "sec_a", PASSWORD, meeting, media=False)
        everyone.append(page)
        await page.login()
        form = await page.http.get(f"/meetings/{meeting}/votes")
        token = re.search(r'name="csrf-token" content="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        r = await page.http.post(f"/meetings/{meeting}/votes/{first}/close", data={"csrf_token": token}, timeout=30)
        assert r.status_code == 303
        closed = await chair.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed")
        assert {c: closed["motion"]["result"][c] for c in CHOICES} == result

        # A second ballot, and the owner dies with three ballots in its box.
        await chair.send({"type": "open_vote", "title": "Bầu chi ủy viên (vòng 2)", "kind": "secret"})
        second = (await chair.wait_until(lambda m: m["type"] == "vote" and m["motion"]["id"] != first))["motion"]["id"]
        truth, order = _ballot(rng, list(voters))
        await _cast_all(clients, second, truth, order)
        a.kill()
        for client in clients.values():
            told = await client.wait_until(lambda m: m["type"] == "vote" and m.get("notice"), timeout=30)
            assert told["motion"]["status"] == "open" and told["motion"]["id"] not in (first, second)
            assert "3 phiếu" in told["notice"] and "bỏ phiếu lại" in told["notice"]
        again = told["motion"]["id"]
        truth, order = _ballot(rng, list(voters))
        await _cast_all(clients, again, truth, order)
        back = RoomClient(b.base, "sec_a", PASSWORD, meeting, media=False)
        everyone.append(back)
        await back.join()
        await back.send({"type": "close_vote", "motion_id": again})
        closed = await back.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed")
        assert {c: closed["motion"]["result"][c] for c in CHOICES} == dict(Counter(truth.values()))
        with sqlite_database.session() as s:
            voided = s.get(votes.Motion, second)
            assert (voided.status, voided.ballots_in_box, voided.agree) == (votes.MotionStatus.VOID, 3, None)
            assert votes.voter_ids(s, voided) == set()
            assert s.scalar(select(AuditEntry.note).where(AuditEntry.action == "vote.void")) == told["notice"]
            assert told["notice"] in [m.text for m in chat.history(s, meeting) if m.participant == "system"]
    finally:
        recorder.cancel()
        await pubsub.aclose()
        await listener.aclose()
        await asyncio.gather(*(c.close() for c in everyone), return_exceptions=True)


async def test_a_secret_ballot_in_flight_when_the_server_is_killed_is_run_again(
        room_world, sqlite_database, tmp_path):
    """One server process, no Redis: kill -9 with ballots in the room's box, start it again.
    The ballot in flight is void, reopened, and everyone who comes back is told."""
    with sqlite_database.session() as s:
        voters = add_voters(s, s.get(Organisation, room_world.world.id("A")), room_world.meeting_id, 3)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": str(sqlite_database.engine.url),
           "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "crash-test-secret-0123456789", "LOG_REQUESTS": "false"}
    meeting = room_world.meeting_id
    server = Server(env)
    clients: list[RoomClient] = []
    try:
        await server.ready()
        chair = RoomClient(server.base, "sec_a", PASSWORD, meeting, media=False)
        voting = {m: RoomClient(server.base, user, PASSWORD, meeting, media=False) for m, (user, _) in voters.items()}
        clients += [chair, *voting.values()]
        for client in clients:
            await client.join()
        await chair.send({"type": "open_vote", "title": "Đề nghị kỷ luật", "kind": "secret"})
        first = (await chair.wait_for("vote"))["motion"]["id"]
        truth, order = _ballot(random.Random(9), list(voters))
        await _cast_all(voting, first, dict(truth), order[:2])
        server.kill()
        server.stop()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

        server = Server(env)
        await server.ready()
        comeback = {m: RoomClient(server.base, user, PASSWORD, meeting, media=False) for m, (user, _) in voters.items()}
        clients = list(comeback.values())
        for client in clients:
            await client.join()
            welcome = await client.wait_for("welcome")
            assert welcome["vote"]["id"] != first and welcome["vote"]["status"] == "open"
            assert welcome["voted"] is False
            told = await client.wait_until(lambda m: m["type"] == "vote" and m.get("notice"))
            assert "2 phiếu" in told["notice"]
            assert any(m["sender"] == "system" and m["text"] == told["notice"] for m in welcome["chat"])
        again = welcome["vote"]["id"]
        await _cast_all(comeback, again, truth, order)
        chair = RoomClient(server.base, "sec_a", PASSWORD, meeting, media=False)
        clients.append(chair)
        await chair.join()
        await chair.send({"type": "close_vote", "motion_id": again})
        closed = await chair.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed")
        assert {c: closed["motion"]["result"][c] for c in CHOICES} == dict(Counter(truth.values()))
        with sqlite_database.session() as s:
            assert s.get(votes.Motion, first).status == votes.MotionStatus.VOID
            assert votes.voter_ids(s, s.get(votes.Motion, again)) == set(voters)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        server.stop()
