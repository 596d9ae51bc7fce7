"""Real media: aiortc peers join through the signalling server and exchange audio and video.

Marked ``netns``: scripts/test runs these inside a loopback-only network namespace.
"""

from __future__ import annotations

import asyncio

import pytest

from meetings.foundation.base import utcnow
from meetings.planning.meetings import Meeting, RemoteInvite
from meetings.proceedings import attendance, presence

pytestmark = [pytest.mark.anyio, pytest.mark.netns]


@pytest.fixture
def invite_a2(sqlite_database, room_world):  # type: ignore[no-untyped-def]
    with sqlite_database.session() as s:
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=room_world.world.id("a2")))


async def test_three_peers_connect_and_receive_each_others_audio_and_video(participant, room_world, invite_a2):
    names = ("sec_a", "away_a", "mem_a")
    clients = [participant(name, media=True) for name in names]
    for client in clients:
        await client.join()
    ids = [f"m{room_world.world.id(k)}" for k in ("a1", "a4", "a2")]
    for client, me in zip(clients, ids, strict=True):
        others = [i for i in ids if i != me]
        await asyncio.wait_for(asyncio.gather(*(wait_link(client, o) for o in others)), 20)
        await client.wait_media(others, frames=15)
        for other in others:
            link = client.links[other]
            assert link.pc.connectionState == "connected"
            assert link.video_size == (320, 240)


async def wait_link(client, remote):  # type: ignore[no-untyped-def]
    while remote not in client.links:
        await asyncio.sleep(0.02)
    await client.links[remote].connected.wait()


async def test_dropped_websocket_comes_back_as_the_same_participant_with_media(participant, room_world,
                                                                                 sqlite_database):
    chair, away = participant("sec_a", media=True), participant("away_a", media=True)
    await chair.join()
    await away.join()
    a1, a4 = f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}"
    await chair.wait_media([a4])
    await away.wait_media([a1])
    old_pc = chair.links[a4].pc
    await away.drop()
    away.messages.clear()
    await away.connect()
    welcome = await away.wait_for("welcome")
    assert welcome["you"] == a4 and welcome["resumed"] is True

    async def new_link() -> None:
        while a4 not in chair.links or chair.links[a4].pc is old_pc:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(new_link(), 10)
    await chair.wait_media([a4], frames=15)
    await away.wait_media([a1], frames=15)
    assert [p["id"] for p in welcome["participants"]].count(a4) == 1
    with sqlite_database.session() as s:
        mine = [i for i in presence.intervals(s, room_world.meeting_id) if i.member_id == room_world.world.id("a4")]
        meeting = s.get(Meeting, room_world.meeting_id)
        now = utcnow()
        records = [r for r in attendance.refresh_online(s, meeting, now) if r.member_id == room_world.world.id("a4")]
        summary = attendance.online_presence(s, meeting, now)[room_world.world.id("a4")]
    assert len(mine) == 1 and mine[0].left_at is None
    # One roster line, connected the whole time it was in the room (the drop was one stretch).
    assert len(records) == 1 and records[0].first_join == mine[0].joined_at
    assert len(summary.spans) == 1
    assert summary.seconds >= (now - max(mine[0].joined_at, meeting.opened_at)).total_seconds() - 1
