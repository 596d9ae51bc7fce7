"""kill -9 of the server during a meeting, down for 150 seconds (issue 13, findings 5 and 7):
the downtime is never credited as presence — the away member's presence has two spans — and
a member removed from the meeting stays out after the restart.

The server is the real application in its own process (tests/support/clocked_server.py), its
clock moved 150 s forward for the second run, so the test does not wait for the outage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from meetings.foundation.base import utcnow
from meetings.planning.meetings import Meeting, MeetingStatus, RemoteInvite
from meetings.proceedings import attendance, presence
from tests.support.room_fixtures import free_port
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
OUTAGE = 150


class ClockedServer:
    def __init__(self, env: dict[str, str], port: int, clock_file: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.clocked_server", "--port", str(port), "--clock-file",
             str(clock_file)], env={**env, "PUBLIC_URL": self.base}, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def ready(self) -> None:
        async with httpx2.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{self.base}/healthz")).status_code == 200:
                        return
                except httpx2.HTTPError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode())  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()


async def csrf(client: RoomClient) -> str:
    page = await client.http.get("/")
    return page.text.split('name="csrf-token" content="')[1].split('"')[0]


async def test_kill_9_credits_no_downtime_and_keeps_the_removal(room_world, sqlite_database, tmp_path):
    meeting_id, a4 = room_world.meeting_id, room_world.world.id("a4")
    with sqlite_database.session() as s:
        s.add(RemoteInvite(meeting_id=meeting_id, member_id=room_world.world.id("a2")))
    clock_file = tmp_path / "clock"
    clock_file.write_text("0")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": str(sqlite_database.engine.url),
           "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "crash-test-secret-0123456789",
           "LOG_REQUESTS": "false", "NOTICE_INTERVAL": "0", "ROOM_HEARTBEAT_SECONDS": "0.2"}
    port = free_port()
    server = ClockedServer(env, port, clock_file)
    clients: list[RoomClient] = []
    try:
        await server.ready()
        chair, away, unruly = (RoomClient(server.base, name, PASSWORD, meeting_id, media=False)
                               for name in ("sec_a", "away_a", "mem_a"))
        clients += [chair, away, unruly]
        for client in clients:
            await client.join()
        spare = await unruly.join_token()  # taken before the removal: only the room can refuse it
        await chair.send({"type": "remove", "participant": f"m{room_world.world.id('a2')}", "reason": "Gây ồn"})
        await unruly.wait_for("removed")
        await asyncio.sleep(1.0)  # the room confirms presence every 0.2 s
        with sqlite_database.session() as s:
            last_seen = next(i.last_seen_at for i in presence.intervals(s, meeting_id) if i.member_id == a4)
        server.kill()  # kill -9: no leave is written, no heartbeat after this
        killed_at = utcnow()

        clock_file.write_text(str(OUTAGE))  # the server comes back 150 s later
        server = ClockedServer(env, port, clock_file)
        await server.ready()
        away.messages.clear()
        await away.connect()
        assert (await away.wait_for("welcome", timeout=15))["you"] == f"m{a4}"
        # The removed member's login session outlives the restart (it is in the database).
        unruly.messages.clear()
        refused = await unruly.http.get(f"/meetings/{meeting_id}/room/token", params={"device": "member"})
        assert refused.status_code == 403 and refused.json()["error"] == "removed"
        await unruly.connect(spare)
        assert (await unruly.wait_for("error"))["code"] == "removed"
        assert await unruly.wait_closed() == 4403
        await asyncio.sleep(0.5)
        r = await chair.http.post(f"/meetings/{meeting_id}/close", data={"csrf_token": await csrf(chair)})
        assert r.status_code == 303
        await away.wait_for("meeting", timeout=15)

        with sqlite_database.session() as s:
            meeting = s.get(Meeting, meeting_id)
            assert meeting.status == MeetingStatus.CLOSED
            mine = [i for i in presence.intervals(s, meeting_id) if i.member_id == a4]
            spans = attendance.online_presence(s, meeting, meeting.closed_at)[a4].spans
        assert [i.end_reason for i in mine] == ["lost", "leave"]
        # The lost stretch ends when the dead process last confirmed the member there.
        assert last_seen <= mine[0].left_at <= killed_at
        assert len(spans) == 2
        gap = spans[1][0] - spans[0][1]
        assert gap >= dt.timedelta(seconds=OUTAGE)  # the outage, never credited as presence
        online = sum((b - a).total_seconds() for a, b in spans)
        window = (meeting.closed_at - meeting.opened_at).total_seconds()
        assert online <= window - OUTAGE
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        server.stop()
