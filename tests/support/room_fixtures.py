"""Fixtures for the meeting room: a live server in the test's event loop, an open meeting of
cell A (approved for the online pilot), and participants that log in like browsers do."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
import uvicorn

from app.config import Settings
from app.factory import create_app
from app.server import server_config
from meetings.foundation.actors import Actor
from meetings.foundation.base import utcnow
from meetings.organisation.organisations import Organisation
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus, PilotApproval
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD, World, build_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves out 127.0.0.1 when gathering host candidates; here loopback is all there is."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@dataclass
class RoomWorld:
    world: World
    meeting_id: int
    other_meeting_id: int  # cell B, not approved for the pilot
    #: The database the room's server uses (tests look at sessions, presence, chat).
    db: Any = None


@pytest.fixture
def room_world(sqlite_database) -> RoomWorld:  # type: ignore[no-untyped-def]
    return seed_room_world(sqlite_database)


def seed_room_world(database) -> RoomWorld:  # type: ignore[no-untyped-def]
    """The test world with cell A approved for the pilot and an open meeting of A and of B."""
    with database.session() as s:
        w = build_world(s)
        actor = Actor.system("test")
        s.add(PilotApproval(cell_id=w.id("A"), decision_number="15-QĐ/ĐU", decided_on=dt.date(2026, 1, 5),
                            approving_org_id=w.id("X"), approving_body="Đảng ủy xã Xuân Hòa",
                            valid_from=dt.date(2026, 1, 5)))
        now = utcnow()
        a = s.get(Organisation, w.id("A"))
        meeting = mt.create_meeting(s, actor, a, kind=MeetingKind.REGULAR, starts_at=now, remote_open=True)
        mt.change_status(s, actor, meeting, MeetingStatus.OPEN, now=now)
        b = s.get(Organisation, w.id("B"))
        other = mt.create_meeting(s, actor, b, kind=MeetingKind.REGULAR, starts_at=now, remote_open=True)
        mt.change_status(s, actor, other, MeetingStatus.OPEN, now=now)
        return RoomWorld(world=w, meeting_id=meeting.id, other_meeting_id=other.id, db=database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def room_settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, DATA_DIR=str(tmp_path / "var"), SECRET_KEY="room-test-secret-0123456789",
                             LOG_REQUESTS=False, LOG_LEVEL="WARNING", ROOM_GRACE_SECONDS=1.0)


@asynccontextmanager
async def running_server(settings: Settings, database, port: int) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """One server process's worth of app on ``port``, in this event loop."""
    base = f"http://127.0.0.1:{port}"
    settings.values["PUBLIC_URL"] = base
    app = create_app(settings, database=database)
    config = server_config(app, settings, port=port, lifespan="on", timeout_graceful_shutdown=2)
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield base
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
def server_port() -> int:
    return free_port()


@pytest.fixture
async def server(room_settings, sqlite_database, room_world, server_port) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """uvicorn in this event loop; yields its base URL."""
    async with running_server(room_settings, sqlite_database, server_port) as base:
        yield base


@pytest.fixture
async def participant(server, room_world) -> AsyncIterator[Callable[..., RoomClient]]:  # type: ignore[no-untyped-def]
    clients: list[RoomClient] = []

    def make(username: str, *, media: bool = False, meeting_id: int | None = None, device: str = "member") -> RoomClient:
        client = RoomClient(server, username, PASSWORD, meeting_id or room_world.meeting_id, media=media, device=device)
        clients.append(client)
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


@pytest.fixture
async def lobby_room(participant, room_world, sqlite_database) -> tuple[RoomClient, RoomClient]:  # type: ignore[no-untyped-def]
    """A meeting with the lobby on, its secretary in the room and an away member logged in
    but not yet connected: (chair, away)."""
    with sqlite_database.session() as s:
        s.get(mt.Meeting, room_world.meeting_id).lobby = True
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.login()
    return chair, away
