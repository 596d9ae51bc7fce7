"""The room and the records agree (issue 13): the live counts include every connected member
from the moment they join (finding 2), and every way a meeting ends ends its room (finding 8).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import LOCAL_TZ, utcnow
from meetings.planning.meetings import Meeting, MeetingStatus
from meetings.proceedings import presence
from meetings.proceedings.votes import Motion

pytestmark = pytest.mark.anyio


async def csrf(client) -> str:  # type: ignore[no-untyped-def]
    page = await client.http.get("/")
    return str(page.text.split('name="csrf-token" content="')[1].split('"')[0])


async def test_connected_members_count_from_the_moment_they_join(participant, room_world, sqlite_database):
    """Cell A: a1 (secretary), a2, a4 (away) official, a3 probationary: D = 3. The secretary
    and the away member connect (and the hall device, which is no member)."""
    chair, away, hall = participant("sec_a"), participant("away_a"), participant("sec_a", device="hall")
    for client in (chair, away, hall):
        await client.join()
    counts = (await away.http.get(f"/meetings/{room_world.meeting_id}/attendance.json")).json()["counts"]
    assert (counts["present"], counts["present_online"], counts["present_in_person"]) == (2, 2, 0)
    assert counts["denominator"] == 3 and counts["votes_needed"] == 2
    assert sorted(counts["voters_present"]) == ["Nguyễn Văn Ấn", "Phạm Thị Hường"]
    assert not counts["too_few_voters"]

    await chair.send({"type": "open_vote", "title": "Thông qua nghị quyết tháng 12", "kind": "open"})
    motion = (await away.wait_for("vote"))["motion"]
    for client in (chair, away):
        await client.send({"type": "cast", "motion_id": motion["id"], "choice": "agree"})
        await client.wait_for("vote_cast")
    await chair.send({"type": "close_vote", "motion_id": motion["id"]})
    closed = (await away.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed"))["motion"]
    assert closed["result"] == {"agree": 2, "disagree": 0, "abstain": 0, "denominator": 3, "votes_needed": 2,
                                "passed": True}
    with sqlite_database.session() as s:
        assert s.get(Motion, motion["id"]).voters_present == 2


async def test_recording_the_end_closes_the_meeting_and_its_room(participant, room_world, sqlite_database):
    chair, away = participant("sec_a"), participant("away_a")
    await chair.join()
    await away.join()
    with sqlite_database.session() as s:
        opened = s.get(Meeting, room_world.meeting_id).opened_at.astimezone(LOCAL_TZ)
    start = (opened - dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    end = utcnow().astimezone(LOCAL_TZ)
    r = await chair.http.post(f"/meetings/{room_world.meeting_id}/actual", data={
        "csrf_token": await csrf(chair), "date": start.date().isoformat(), "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}"})
    assert r.status_code == 303
    state = await away.wait_for("meeting")
    assert state["status"] == "closed"
    assert await away.wait_closed() == 4409
    with sqlite_database.session() as s:
        assert s.get(Meeting, room_world.meeting_id).status == MeetingStatus.CLOSED
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == str(room_world.meeting_id),
                                                                 AuditEntry.entity_type == "Meeting")))
        assert "meeting.closed" in actions  # through the state machine, like "Kết thúc cuộc họp"
        intervals = presence.intervals(s, room_world.meeting_id)
        assert intervals and all(i.left_at is not None for i in intervals)
