"""The one access decision for a meeting's room (``meetings.proceedings.room_access``): who an
account is in the room, or why it may not enter."""

import datetime as dt

import pytest

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import accounts
from meetings.organisation.accounts import Account, Role
from meetings.organisation.scoping import scope_for
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus, PilotApproval
from meetings.proceedings import presence
from meetings.proceedings.presence import PresenceEventKind
from meetings.proceedings.room_access import (
    BAD_DEVICE_MESSAGE,
    HALL_MESSAGE,
    OUTSIDE_MESSAGE,
    RoomAccess,
    RoomRefusal,
    RoomRole,
    room_access,
)
from tests.support.world import PASSWORD

ACTOR = Actor.system("test")
START = dt.datetime(2026, 12, 5, 19, 30, tzinfo=LOCAL_TZ)


@pytest.fixture
def meeting_id(database, world):
    with database.session() as s:
        s.add(PilotApproval(cell_id=world.id("A"), decision_number="123-QĐ/ĐU", decided_on=dt.date(2026, 1, 10),
                            approving_org_id=world.id("X"), approving_body="Đảng ủy xã Xuân Hòa",
                            valid_from=dt.date(2026, 1, 15)))
        meeting = mt.create_meeting(s, ACTOR, world.orgs["A"], kind=MeetingKind.REGULAR, starts_at=START,
                                    remote_open=True)
        meeting.status = MeetingStatus.OPEN
        s.flush()
        return meeting.id


def access(session, world, username, meeting_id, device="member"):
    account = session.get(Account, world.accounts[username])
    return room_access(session, scope_for(session, account, START.date()), meeting_id, device)


def test_who_is_who_in_the_room(session, world, meeting_id):
    chair = access(session, world, "sec_a", meeting_id)
    assert isinstance(chair, RoomAccess) and chair.role is RoomRole.CHAIR and chair.chair and chair.may_join
    assert chair.entry is not None and chair.entry.member_id == world.id("a1")
    away = access(session, world, "away_a", meeting_id)
    assert away.role is RoomRole.MEMBER and not away.chair and away.refusal(open_now=True) is None
    assert access(session, world, "sec_a", meeting_id, "hall").role is RoomRole.HALL
    # A platform admin runs any cell's meeting, with no member record of their own.
    admin = access(session, world, "admin", meeting_id)
    assert admin.role is RoomRole.CHAIR and admin.entry is None


def test_readers_who_may_not_join_are_observers_told_why(session, world, meeting_id):
    home = access(session, world, "mem_a", meeting_id)  # a2: not away, not invited
    assert home.role is RoomRole.OBSERVER and not home.may_join
    refusal = home.refusal()
    assert refusal == RoomRefusal("not_allowed", home.reason) and "danh sách tham gia trực tuyến" in refusal.reason
    auditor = access(session, world, "aud_x", meeting_id)  # reads the commune's cells, sits in none
    assert auditor.role is RoomRole.OBSERVER and "không sinh hoạt tại chi bộ này" in auditor.reason
    hall = access(session, world, "away_a", meeting_id, "hall")
    assert hall.role is RoomRole.OBSERVER and hall.reason == HALL_MESSAGE
    odd = access(session, world, "sec_a", meeting_id, "tablet")
    assert odd.role is RoomRole.OBSERVER and odd.reason == BAD_DEVICE_MESSAGE and odd.chair


def test_outside_the_cell_or_missing_is_a_refusal_without_the_meeting(session, world, meeting_id):
    assert access(session, world, "sec_b", meeting_id) == RoomRefusal("not_allowed", OUTSIDE_MESSAGE, hidden=True)
    for missing in (meeting_id + 1000, 0, -1, 2**63):
        refusal = access(session, world, "sec_a", missing)
        assert isinstance(refusal, RoomRefusal) and refusal.code == "not_found" and not refusal.hidden


def test_a_deputy_or_a_secretary_without_member_record_chairs(session, world, meeting_id):
    deputy = session.get(Account, world.accounts["mem_a"])
    accounts.grant_role(session, ACTOR, deputy, Role.DEPUTY, world.orgs["A"])
    clerk = accounts.create_account(session, ACTOR, username="vanphong", password=PASSWORD, display_name="Văn phòng",
                                    member=None, must_change_password=False)
    accounts.grant_role(session, ACTOR, clerk, Role.SECRETARY, world.orgs["A"])
    session.flush()
    world.accounts["vanphong"] = clerk.id
    assert access(session, world, "mem_a", meeting_id).role is RoomRole.CHAIR
    assert access(session, world, "vanphong", meeting_id).role is RoomRole.CHAIR
    # An auditor of the commune does not chair: oversight is not running the meeting.
    assert not access(session, world, "aud_x", meeting_id).chair


def test_the_meeting_must_be_open_for_the_socket_and_not_over_for_anyone(session, world, meeting_id):
    meeting = access(session, world, "away_a", meeting_id).meeting
    meeting.status = MeetingStatus.SCHEDULED
    scheduled = access(session, world, "away_a", meeting_id)
    assert scheduled.refusal() is None  # a token may be fetched ahead
    assert scheduled.refusal(open_now=True).code == "meeting_not_open"
    meeting.status = MeetingStatus.CLOSED
    closed = access(session, world, "sec_a", meeting_id)
    assert closed.role is RoomRole.OBSERVER and closed.chair and closed.reason == "Cuộc họp đã kết thúc."


def test_a_removed_member_stays_out_and_the_others_do_not(session, world, meeting_id):
    at = START.astimezone(dt.UTC)
    presence.record_join(session, meeting_id, world.id("a4"), world.accounts["away_a"], "member", at)
    presence.record_leave(session, meeting_id, world.id("a4"), world.accounts["away_a"], "member", at,
                          PresenceEventKind.REMOVED)
    removed = access(session, world, "away_a", meeting_id)
    assert removed.role is RoomRole.MEMBER and removed.removed
    assert removed.refusal().code == "removed" and not removed.may_join
    assert access(session, world, "sec_a", meeting_id).may_join
    assert access(session, world, "sec_a", meeting_id, "hall").may_join  # the hall was not removed


def test_the_meeting_page_offers_the_room_to_whoever_the_room_admits(world, meeting_id, client_as, clock):
    """One meaning of "secretary": the platform admin runs the room, so the meeting page shows
    the join link to them too; a member not on the remote list is told why on both pages."""
    clock.set_local(2026, 12, 5, 19, 40)
    admin = client_as("admin")
    page = admin.get(f"/meetings/{meeting_id}")
    assert page.status_code == 200 and f'href="/meetings/{meeting_id}/room">Tham gia trực tuyến' in page.text
    assert admin.get(f"/meetings/{meeting_id}/room/token").status_code == 200
    member = client_as("mem_a")
    assert f'href="/meetings/{meeting_id}/room">Tham gia trực tuyến' not in member.get(f"/meetings/{meeting_id}").text
    refused = member.get(f"/meetings/{meeting_id}/room/token")
    assert refused.status_code == 403 and "danh sách tham gia trực tuyến" in refused.json()["message"]
    assert "danh sách tham gia trực tuyến" in member.get(f"/meetings/{meeting_id}/room").text
