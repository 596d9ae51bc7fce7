"""Meeting lifecycle and who may join remotely (HD 03-HD/TW pilot; case C5's last line)."""

import datetime as dt

import pytest

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import ValidationError
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus, PilotApproval, RemoteInvite
from meetings.planning.online import remote_decision

ACTOR = Actor.system("test")
START = dt.datetime(2026, 12, 5, 19, 30, tzinfo=LOCAL_TZ)


def meeting(session, world, **kw):
    return mt.create_meeting(session, ACTOR, world.orgs["A"], kind=MeetingKind.REGULAR, starts_at=START, **kw)


def approve(session, world):
    session.add(PilotApproval(cell_id=world.id("A"), decision_number="123-QĐ/ĐU", decided_on=dt.date(2026, 1, 10),
                              approving_org_id=world.id("X"), approving_body="Đảng ủy xã Xuân Hòa",
                              valid_from=dt.date(2026, 1, 15)))
    session.flush()


def test_meeting_keeps_its_cell_and_supervisor(session, world):
    m = meeting(session, world)
    assert m.cell_id == world.id("A") and m.supervisor_id == world.id("X")
    assert m.title == "Sinh hoạt thường kỳ tháng 12/2026"
    assert m.local_start.hour == 19 and m.uid.endswith("@chibo")


def test_status_transitions_are_explicit(session, world):
    m = meeting(session, world)
    now = START.astimezone(dt.UTC)
    with pytest.raises(ValidationError, match="ghi thời gian họp thực tế"):
        mt.change_status(session, ACTOR, m, MeetingStatus.CLOSED, now=now)
    mt.change_status(session, ACTOR, m, MeetingStatus.OPEN, now=now)
    mt.change_status(session, ACTOR, m, MeetingStatus.CLOSED, now=now + dt.timedelta(minutes=75))
    assert m.duration_minutes == 75
    with pytest.raises(ValidationError):
        mt.change_status(session, ACTOR, m, MeetingStatus.OPEN, now=now)
    other = meeting(session, world)
    with pytest.raises(ValidationError, match="lý do"):
        mt.change_status(session, ACTOR, other, MeetingStatus.CANCELLED, now=now)


def test_cell_without_pilot_approval_cannot_join_remotely(session, world):
    m = meeting(session, world, remote_open=True)
    decision = remote_decision(session, m, world.id("a4"), is_secretary=False)
    assert not decision.allowed and "chưa được cấp ủy cấp trên phê duyệt" in decision.reason


def test_remote_participation_rules(session, world):
    approve(session, world)
    m = meeting(session, world)
    a4, a2, b2 = world.id("a4"), world.id("a2"), world.id("b2")
    assert "không mở tham gia trực tuyến" in remote_decision(session, m, a4, is_secretary=False).reason
    m.remote_open = True
    assert remote_decision(session, m, a4, is_secretary=False).allowed  # away: allowed by default
    refused = remote_decision(session, m, a2, is_secretary=False)
    assert not refused.allowed and "không có trong danh sách" in refused.reason
    session.add(RemoteInvite(meeting_id=m.id, member_id=a2, reason="Đi công tác"))
    session.flush()
    assert remote_decision(session, m, a2, is_secretary=False).allowed
    assert "không sinh hoạt tại chi bộ này" in remote_decision(session, m, b2, is_secretary=False).reason
    assert remote_decision(session, m, world.id("a1"), is_secretary=True).chair
    m.status = MeetingStatus.CLOSED
    assert remote_decision(session, m, a4, is_secretary=False).reason == "Cuộc họp đã kết thúc."
