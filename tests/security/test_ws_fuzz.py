"""A bounded fuzz of the meeting room's WebSocket (issue 12 acceptance).

A real server process; two honest participants chat throughout; meanwhile several other
connections send thousands of malformed, oversized, binary and unknown frames — some
logged in and in the room (reconnecting with a fresh token whenever the flood protection
cuts them off), some never getting past the handshake. Afterwards: the server is up, every
honest chat message arrived, and the server's memory grew by a bounded amount.

The frames are drawn from a fixed seed, so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random

import pytest
import websockets

from meetings.foundation.actors import Actor
from meetings.organisation import accounts
from meetings.organisation.accounts import Role
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import RemoteInvite
from tests.realtime.test_cluster import Server
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD

pytestmark = pytest.mark.anyio

SEED = 20261207
FRAMES_PER_FUZZER = 1500
#: While fuzzed again, the server may use this much more memory than after the first round
#: (transient buffers), and keep at most this much of it.
MEMORY_BOUND_KB = 48 * 1024
MEMORY_GROWTH_KB = 16 * 1024


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def frames(rng: random.Random, target: str):  # type: ignore[no-untyped-def]
    """An endless mix of bad frames (and a few well-formed ones with bad content)."""
    makers = [
        lambda: rng.randbytes(rng.randint(0, 3000)),  # binary garbage
        lambda: bytes([0xFF, 0xFE]) + rng.randbytes(50),  # binary that is not UTF-8
        lambda: "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 200))),  # text, not JSON
        lambda: json.dumps(rng.choice([[], 1, "x", None, True, 1.5, [1, {"type": "chat"}]])),
        lambda: json.dumps({"typ": "chat", "text": "thiếu type"}),
        lambda: json.dumps({"type": rng.choice(["", "HELLO", "chat ", "x" * 500, "__proto__", "relay", "error"])}),
        lambda: json.dumps({"type": "chat", "text": rng.choice([None, 5, [], {}, "", " " * 10, "x" * 1001])}),
        lambda: json.dumps({"type": "offer", "to": target, "sdp": rng.randbytes(100).hex()}),
        lambda: json.dumps({"type": "candidate", "to": "m999999", "candidate": {"candidate": "x" * 2000}}),
        lambda: json.dumps({"type": "cast", "motion_id": rng.choice([2**63, -1, 0, 10**30]), "choice": "agree"}),
        lambda: json.dumps({"type": "delete_chat", "message_id": 2**70}),  # a chair-only message
        lambda: json.dumps({"type": "hello", "version": 1, "token": "x"}),
        lambda: json.dumps({"type": "media", "audio": "yes", "video": None}),
        lambda: '{"type": "ping", "t": NaN}',
        lambda: "[" * 20_000 + "]" * 20_000,  # deep nesting within 64 KiB
        lambda: json.dumps({"type": "chat", "text": "x" * 70_000}),  # over the 64 KiB frame limit
        lambda: '{"type": "chat", "text": "' + "\\ud800" * 100 + '"}',  # lone surrogates
        lambda: json.dumps({"type": "quality", "level": "x" * 10_000}),
    ]
    while True:
        if rng.random() < 0.002:
            yield "x" * (2 * 1024 * 1024)  # past the server's 1 MiB message cap: the socket closes
        else:
            yield rng.choice(makers)()


async def fuzz_in_room(client: RoomClient, seed: int, target: str) -> int:
    """Logged in and in the room: send until cut off, come back with a new token, repeat."""
    rng = random.Random(seed)
    source = frames(rng, target)
    sent = 0
    try:
        while sent < FRAMES_PER_FUZZER:
            await client.connect()
            await client.wait_for("welcome")
            client.messages.clear()
            try:
                while sent < FRAMES_PER_FUZZER:
                    await client.send_raw(next(source))
                    sent += 1
            except websockets.ConnectionClosed:
                pass
            await client.drop()
    finally:
        await client.drop()
    return sent


async def fuzz_at_the_door(base: str, meeting: int, seed: int) -> int:
    """Never past the handshake: garbage instead of hello, without a session."""
    rng = random.Random(seed)
    source = frames(rng, "m1")
    url = base.replace("http://", "ws://") + f"/ws/meetings/{meeting}"
    sent = 0
    while sent < FRAMES_PER_FUZZER // 6:
        try:
            async with websockets.connect(url, origin=base, max_size=2**22) as ws:  # type: ignore[arg-type]
                for _ in range(3):
                    await ws.send(next(source))
                    sent += 1
                await asyncio.wait_for(ws.recv(), 10)
        except (websockets.ConnectionClosed, websockets.InvalidStatus, TimeoutError):
            sent += 1
    return sent


async def test_the_room_survives_a_fuzzing(sqlite_database, room_world, tmp_path):
    world, meeting = room_world.world, room_world.meeting_id
    with sqlite_database.session() as s:
        for key in ("a2", "a3"):
            s.add(RemoteInvite(meeting_id=meeting, member_id=world.id(key)))
        account = accounts.create_account(s, Actor.system("t"), username="fuzz_a3", password=PASSWORD,
                                          display_name="Lê Hoàng Dũng", member=s.get(Member, world.id("a3")),
                                          must_change_password=False)
        accounts.grant_role(s, Actor.system("t"), account, Role.MEMBER, s.get(Organisation, world.id("A")))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": str(sqlite_database.engine.url),
           "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "fuzz-test-secret-0123456789",
           "LOG_REQUESTS": "false", "LOG_LEVEL": "ERROR", "NOTICE_INTERVAL": "0"}
    server = Server(env)
    chair = RoomClient(server.base, "sec_a", PASSWORD, meeting, media=False)
    away = RoomClient(server.base, "away_a", PASSWORD, meeting, media=False)
    fuzzers = [RoomClient(server.base, name, PASSWORD, meeting, media=False) for name in ("mem_a", "fuzz_a3", "mem_a")]
    chair_id = f"m{world.id('a1')}"
    try:
        await server.ready()
        await chair.join()
        await away.join()
        for fuzzer in fuzzers:  # logins (64 MiB of Argon2id each, briefly) before the memory is watched
            await fuzzer.login()
        honest_sent = 0

        async def honest() -> None:
            nonlocal honest_sent
            while True:
                await asyncio.sleep(1.3)  # within the chat allowance
                honest_sent += 1
                await chair.send({"type": "chat", "text": f"Chủ trì {honest_sent}"})
                await away.send({"type": "chat", "text": f"Đảng viên {honest_sent}"})

        async def fuzz_round(seed: int) -> tuple[int, int]:
            """(frames sent, the server's peak RSS in kB) over one round of fuzzing."""
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, rss_kb(server.proc.pid))
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            sent = await asyncio.gather(
                *(fuzz_in_room(f, seed + i, chair_id) for i, f in enumerate(fuzzers)),  # mem_a twice: two devices
                fuzz_at_the_door(server.base, meeting, seed + 10),
                fuzz_at_the_door(server.base, meeting, seed + 11),
            )
            await asyncio.sleep(0.5)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            return sum(sent), max(peak, rss_kb(server.proc.pid))

        talk = asyncio.create_task(honest())
        # The first round warms the server up (threads, caches, the allocator's arenas); the
        # second must then fit in the same memory: what a fuzzed server holds stays bounded.
        first_sent, first_peak = await fuzz_round(SEED)
        settled = rss_kb(server.proc.pid)
        second_sent, second_peak = await fuzz_round(SEED + 100)
        after = rss_kb(server.proc.pid)
        while honest_sent < 5:  # the honest pair talks through at least five rounds
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)
        talk.cancel()
        await asyncio.gather(talk, return_exceptions=True)
        assert first_sent + second_sent > 8000

        # The server is up and the honest participants still talk to each other.
        assert server.proc.poll() is None
        await chair.send({"type": "chat", "text": "Kết thúc thử nghiệm"})
        await away.wait_until(lambda m: m["type"] == "chat" and m["message"]["text"] == "Kết thúc thử nghiệm")
        heard_by_away = {m["message"]["text"] for m in away.messages if m["type"] == "chat"}
        heard_by_chair = {m["message"]["text"] for m in chair.messages if m["type"] == "chat"}
        assert {f"Chủ trì {n}" for n in range(1, honest_sent + 1)} <= heard_by_away
        assert {f"Đảng viên {n}" for n in range(1, honest_sent + 1)} <= heard_by_chair
        assert (await chair.http.get("/healthz")).status_code == 200
        # Memory stayed bounded: the second round needed no more than the first left behind.
        assert second_peak - settled < MEMORY_BOUND_KB, (first_peak, settled, second_peak, after)
        assert after - settled < MEMORY_GROWTH_KB, (first_peak, settled, second_peak, after)
    finally:
        for client in (chair, away, *fuzzers):
            await client.close()
        server.stop()
