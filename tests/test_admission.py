"""The join path keeps room access decisions (``realtime.admission``) only while nothing they
read changes: roles, periods, the meeting and its remote list, removals (issue 18)."""

import datetime as dt

import pytest
from sqlalchemy import delete, select, text

from meetings.foundation.actors import Actor
from meetings.organisation import accounts, members
from meetings.organisation.accounts import Account, Role, RoleGrant
from meetings.organisation.members import Member, MemberPeriod, PeriodInput, PeriodKind
from meetings.organisation.sessions import LoginSession
from meetings.planning.meetings import Meeting, MeetingStatus, RemoteInvite
from meetings.proceedings import access_epoch, presence
from meetings.proceedings.presence import PresenceEventKind
from meetings.proceedings.room_access import RoomRole
from realtime.admission import Admission, AdmissionCache
from tests.support.web import post
from tests.test_room_access import START, meeting_id  # noqa: F401 - the fixture

ACTOR = Actor.system("test")
DAY = START.date()


@pytest.fixture
def decide(database, world):  # type: ignore[no-untyped-def]
    """Each call in a session of its own, as two requests or two processes would."""
    cache = AdmissionCache()

    def run(username: str, meeting: int, device: str = "member") -> Admission:
        with database.session() as s:
            account = s.get(Account, world.accounts[username])
            decision = cache.decide(s, account, world.accounts[username], meeting, device, DAY)
            assert isinstance(decision, Admission)
            return decision

    run.cache = cache  # type: ignore[attr-defined]
    return run


def change(database, fn):  # type: ignore[no-untyped-def]
    with database.session() as s:
        fn(s)


def test_a_kept_decision_is_used_until_something_it_read_changes(database, world, meeting_id, decide):  # noqa: F811
    assert decide("mem_a", meeting_id).role is RoomRole.OBSERVER  # a2: not on the remote list
    # Written behind the ORM's back, the epoch does not move: the kept decision still answers.
    change(database, lambda s: s.execute(text("INSERT INTO meeting_remote_invites (meeting_id, member_id, created_at) "
                                              f"VALUES ({meeting_id}, {world.id('a2')}, '2026-12-01 00:00:00')")))
    assert decide("mem_a", meeting_id).role is RoomRole.OBSERVER
    assert decide.cache.hits == 1 and decide.cache.misses == 1
    change(database, access_epoch.bump)
    assert decide("mem_a", meeting_id).role is RoomRole.MEMBER


def test_the_remote_list_invalidates(database, world, meeting_id, decide):  # noqa: F811
    assert decide("mem_a", meeting_id).refusal is not None
    change(database, lambda s: s.add(RemoteInvite(meeting_id=meeting_id, member_id=world.id("a2"))))
    assert decide("mem_a", meeting_id).refusal is None
    change(database, lambda s: s.execute(delete(RemoteInvite).where(RemoteInvite.member_id == world.id("a2"))))
    assert decide("mem_a", meeting_id).role is RoomRole.OBSERVER


def test_what_is_kept_of_a_meeting_for_one_member_is_not_used_for_another_after_a_change(
        database, world, meeting_id, decide):  # noqa: F811
    # away_a's decision reads the meeting's remote list and roster, which are kept for the
    # meeting's other members; mem_a then comes with the list and a period changed since.
    assert decide("away_a", meeting_id).role is RoomRole.MEMBER
    change(database, lambda s: s.add(RemoteInvite(meeting_id=meeting_id, member_id=world.id("a2"))))
    assert decide("mem_a", meeting_id).role is RoomRole.MEMBER
    change(database, lambda s: members.add_period(s, ACTOR, s.get(Member, world.id("a2")), PeriodInput(
        kind=PeriodKind.SUSPENDED, start_on=dt.date(2026, 11, 1), reason="Kỷ luật", decision_number="13-QĐ/ĐU")))
    assert decide("mem_a", meeting_id).role is RoomRole.OBSERVER
    # Nothing changed since: a third member's decision reads nothing of the meeting again.
    assert decide("sec_a", meeting_id).role is RoomRole.CHAIR
    assert decide.cache.meeting_reads == 3


def test_roles_invalidate(database, world, meeting_id, decide):  # noqa: F811
    assert not decide("mem_a", meeting_id).chair
    change(database, lambda s: accounts.grant_role(s, ACTOR, s.get(Account, world.accounts["mem_a"]), Role.DEPUTY,
                                                   world.orgs["A"]))
    assert decide("mem_a", meeting_id).role is RoomRole.CHAIR
    change(database, lambda s: [s.delete(g) for g in s.query(RoleGrant).filter_by(
        account_id=world.accounts["mem_a"], role=Role.DEPUTY)])
    assert decide("mem_a", meeting_id).role is RoomRole.OBSERVER


def test_periods_invalidate(database, world, meeting_id, decide):  # noqa: F811
    assert decide("away_a", meeting_id).role is RoomRole.MEMBER
    change(database, lambda s: members.add_period(s, ACTOR, s.get(Member, world.id("a4")), PeriodInput(
        kind=PeriodKind.SUSPENDED, start_on=dt.date(2026, 11, 1), reason="Kỷ luật", decision_number="12-QĐ/ĐU")))
    refused = decide("away_a", meeting_id)
    assert refused.role is RoomRole.OBSERVER and "không tham dự" in refused.refusal.reason
    change(database, lambda s: [s.delete(p) for p in s.query(MemberPeriod).filter_by(
        member_id=world.id("a4"), kind=PeriodKind.SUSPENDED)])
    assert decide("away_a", meeting_id).role is RoomRole.MEMBER


def test_the_meeting_and_removals_invalidate(database, world, meeting_id, decide):  # noqa: F811
    assert decide("away_a", meeting_id).refusal_open is None

    def remove(s):  # type: ignore[no-untyped-def]
        at = START.astimezone(dt.UTC)
        presence.record_join(s, meeting_id, world.id("a4"), world.accounts["away_a"], "member", at)
        presence.record_leave(s, meeting_id, world.id("a4"), world.accounts["away_a"], "member", at,
                              PresenceEventKind.REMOVED)

    change(database, remove)
    assert decide("away_a", meeting_id).refusal.code == "removed"
    assert decide("sec_a", meeting_id).refusal_open is None
    change(database, lambda s: setattr(s.get(Meeting, meeting_id), "status", MeetingStatus.CLOSED))
    assert decide("sec_a", meeting_id).refusal.reason == "Cuộc họp đã kết thúc."


def test_the_token_route_opens_the_login_session_itself_by_the_same_rules(world, meeting_id, client_as,  # noqa: F811
                                                                         database, clock):
    """The token route opens the login session in its own transaction (``app.sessions``,
    deferred routes): a request is the session's use, and a session gone idle is ended there
    and gets no token, as on any page."""
    clock.set_local(2026, 12, 5, 19, 40)
    member = client_as("away_a")
    url = f"/meetings/{meeting_id}/room/token"
    clock.advance(hours=3, minutes=59)
    assert member.get(url).status_code == 200  # used: the idle clock restarts
    clock.advance(hours=3, minutes=59)
    assert member.get(url, follow_redirects=False).status_code == 200
    clock.advance(hours=4)
    refused = member.get(url, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    with database.session() as s:
        row = s.scalars(select(LoginSession).where(LoginSession.account_id == world.accounts["away_a"])).one()
        assert row.end_reason is not None and row.end_reason.value == "idle"


def test_joining_does_not_move_the_epoch_so_the_second_request_is_kept(world, meeting_id, client_as, app,  # noqa: F811
                                                                        database, clock):
    clock.set_local(2026, 12, 5, 19, 40)
    member = client_as("away_a")
    with database.session() as s:
        before = access_epoch.current(s)
    for _ in range(3):
        assert member.get(f"/meetings/{meeting_id}/room/token").status_code == 200
    cache = app.state.admissions
    assert (cache.misses, cache.hits) == (1, 2)
    with database.session() as s:
        assert access_epoch.current(s) == before
    # The chair adds a2 to the remote list on the meeting page: a2's refusal is not kept past it.
    other = client_as("mem_a")
    assert other.get(f"/meetings/{meeting_id}/room/token").status_code == 403
    chair = client_as("sec_a")
    added = post(chair, f"/meetings/{meeting_id}/remote", {"member_id": str(world.id("a2")), "reason": "Đi công tác"})
    assert added.status_code == 303
    assert other.get(f"/meetings/{meeting_id}/room/token").status_code == 200
    removed = post(chair, f"/meetings/{meeting_id}/remote", {"member_id": str(world.id("a2")), "action": "remove"})
    assert removed.status_code == 303
    assert other.get(f"/meetings/{meeting_id}/room/token").status_code == 403
