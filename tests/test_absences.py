"""Absence requests (xin vắng) through the pages: filing, bad input, the secretary's decision."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning import absences, dates, schedules
from meetings.planning.absences import AbsenceRequest, AbsenceStatus
from meetings.planning.meetings import Meeting, MeetingKind
from tests.support.web import post

ACTOR = Actor.system("test")


def at(*args):
    return dt.datetime(*args, tzinfo=LOCAL_TZ)


@pytest.fixture
def meetings_ab(database, world):
    """A meeting of cell A and one of cell B, both on 5 December 2026 at 19:30."""
    with database.session() as s:
        ids = {}
        for key in ("A", "B"):
            ids[key] = schedules.create_adhoc(s, ACTOR, s.get(Organisation, world.id(key)), kind=MeetingKind.REGULAR,
                                              starts_at=at(2026, 12, 5, 19, 30), now=at(2026, 11, 27, 10, 0)).id
        return ids


def requests(database):
    with database.session() as s:
        return list(s.scalars(select(AbsenceRequest)))


def test_member_files_and_secretary_decides(database, world, client_as, meetings_ab, clock):
    mem = client_as("mem_a")
    url = f"/meetings/{meetings_ab['A']}"
    assert "Gửi đơn xin vắng" in mem.get(url).text
    r = post(mem, f"{url}/absence", {"reason": "Đi công tác Đà Nẵng"})
    assert r.status_code == 303
    page = mem.get(url).text
    assert "“Đi công tác Đà Nẵng”" in page and "Chờ bí thư xem xét" in page and "gửi muộn" not in page
    # Filing twice is refused.
    again = post(mem, f"{url}/absence", {"reason": "Lần nữa"})
    assert again.status_code == 409 and "đã gửi đơn xin vắng" in again.text
    sec = client_as("sec_a")
    assert "Đi công tác Đà Nẵng" in sec.get(url).text
    request_id = requests(database)[0].id
    refused = post(sec, f"/absences/{request_id}/decide", {"decision": "reject", "note": ""})
    assert refused.status_code == 400 and "cần ghi rõ lý do" in refused.text
    assert post(sec, f"/absences/{request_id}/decide", {"decision": "approve", "note": "Đồng ý"}).status_code == 303
    assert "Đã chấp thuận (vắng có lý do)" in mem.get(url).text
    with database.session() as s:
        assert absences.excused_member_ids(s, meetings_ab["A"]) == {world.id("a2")}
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("absence.%"))))
    assert actions == {"absence.file", "absence.approve"}
    # The member cannot decide on requests.
    assert post(mem, f"/absences/{request_id}/decide", {"decision": "approve"}).status_code == 403


def test_late_request_is_accepted_and_marked(database, client_as, meetings_ab, clock):
    clock.set_local(2026, 12, 5, 9, 0)  # same day: less than 24 hours before
    mem = client_as("mem_a")
    assert post(mem, f"/meetings/{meetings_ab['A']}/absence", {"reason": "Con ốm"}).status_code == 303
    assert requests(database)[0].late
    assert "gửi muộn" in mem.get(f"/meetings/{meetings_ab['A']}").text


def test_bad_requests_are_refused_with_a_clear_message_and_nothing_stored(database, world, client_as, meetings_ab,
                                                                         clock):
    mem = client_as("mem_a")
    empty = post(mem, f"/meetings/{meetings_ab['A']}/absence", {"reason": "   "})
    assert empty.status_code == 400 and "Cần ghi lý do xin vắng." in empty.text
    other = post(mem, f"/meetings/{meetings_ab['B']}/absence", {"reason": "Đi công tác"})
    assert other.status_code == 404 and "Chỉ xin vắng được cuộc họp của chi bộ mình" in other.text
    # The meeting took place and the secretary recorded it: too late to ask.
    with database.session() as s:
        dates.record_actual_times(s, ACTOR, s.get(Meeting, meetings_ab["A"]), at(2026, 12, 5, 19, 30),
                                      at(2026, 12, 5, 21, 30), now=at(2026, 12, 5, 22, 0))
    clock.set_local(2026, 12, 6, 8, 0)
    mem = client_as("mem_a")  # nine days later: a new login (sessions end after 4 idle hours)
    closed = post(mem, f"/meetings/{meetings_ab['A']}/absence", {"reason": "Quên mất"})
    assert closed.status_code == 400 and "Cuộc họp đã kết thúc, không thể xin vắng nữa" in closed.text
    assert requests(database) == []
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("absence.%"))) == 0


def test_exempt_member_need_not_ask(session, world, meetings_ab):
    from meetings.organisation import members
    from meetings.organisation.members import Member, PeriodInput, PeriodKind

    members.add_period(session, ACTOR, session.get(Member, world.id("a2")), PeriodInput(
        kind=PeriodKind.EXEMPT, start_on=dt.date(2026, 12, 1), decision_number="02-NQ/CB", reason="Tuổi cao"))
    meeting = session.get(Meeting, meetings_ab["A"])
    with pytest.raises(Exception, match="không cần xin vắng"):
        absences.file_request(session, ACTOR, meeting, world.id("a2"), "Ốm", now=at(2026, 11, 28, 9, 0))
    assert session.scalar(select(func.count()).select_from(AbsenceRequest)) == 0
    assert AbsenceStatus.APPROVED.label == "Đã chấp thuận (vắng có lý do)"
