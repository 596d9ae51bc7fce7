"""One roster per meeting, lawful counts (cases C1, C2, C5 of shared/domain/cases.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import ValidationError
from meetings.organisation import members, organisations
from meetings.organisation.members import PeriodInput, PeriodKind
from meetings.organisation.organisations import OrgKind
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus
from meetings.proceedings import attendance as att
from meetings.proceedings import presence, votes
from meetings.proceedings.attendance import AttendanceMode, AttendanceStatus, Mark
from tests.support.world import add_member

ACTOR = Actor(None, "Bí thư")
START = dt.datetime(2026, 11, 20, 19, 30, tzinfo=LOCAL_TZ)


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, 20, hour, minute, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def new_cell(session, code="CB"):
    province = organisations.create_organisation(session, ACTOR, kind=OrgKind.PROVINCE, name="Tỉnh ủy", code=f"P{code}",
                                                 parent=None, created_on=dt.date(2020, 1, 1))
    return organisations.create_organisation(session, ACTOR, kind=OrgKind.CELL, name=f"Chi bộ {code}", code=code,
                                             parent=province, created_on=dt.date(2020, 1, 1))


def open_meeting(session, cell, minutes=120):
    meeting = mt.create_meeting(session, ACTOR, cell, kind=MeetingKind.REGULAR, starts_at=START, expected_minutes=minutes,
                                remote_open=True)
    mt.change_status(session, ACTOR, meeting, MeetingStatus.OPEN, now=at(19, 30))
    return meeting


def present(session, meeting, member, mode=AttendanceMode.IN_PERSON):
    att.mark(session, ACTOR, meeting, member.id, Mark(status="present", mode=mode), now=at(19, 40))


def test_case_c1_counting_a_meeting(session):
    cell = new_cell(session)
    people = [add_member(session, cell, f"Đảng Viên {chr(65 + i)}") for i in range(15)]
    for p in people[:2]:
        members.add_period(session, ACTOR, p, PeriodInput(kind=PeriodKind.EXEMPT, start_on="2025-01-01",
                                                          decision_number="01-NQ/CB", reason="Tuổi cao"))
    members.add_period(session, ACTOR, people[2], PeriodInput(kind=PeriodKind.TRANSFER_OUT, start_on="2026-09-01",
                                                              end_on="2027-02-28", host_org_name="Đảng bộ phường Y"))
    meeting = open_meeting(session, cell)
    for p in people[3:12]:
        present(session, meeting, p)
    a, b, c = people[12:]
    att.mark(session, ACTOR, meeting, a.id, Mark(status="absent", excused=True, reason_category="illness",
                                                 reason_text="Ốm, nằm viện"), now=at(19, 45))
    att.mark(session, ACTOR, meeting, b.id, Mark(status="absent", excused=True, reason_category="work",
                                                 reason_text="Đi công tác được phân công"), now=at(19, 45))
    att.mark(session, ACTOR, meeting, c.id, Mark(status="absent", excused=False), now=at(19, 45))

    counts = att.counts(att.roster(session, meeting))
    assert (counts.total, counts.official, counts.probationary, counts.attached) == (15, 15, 0, 0)
    assert (counts.exempt, counts.transferred_out, counts.present) == (2, 1, 9)
    assert counts.absent_excused == [(a.full_name, "Ốm, nằm viện"), (b.full_name, "Đi công tác được phân công")]
    assert counts.absent_unexcused == [c.full_name]
    assert counts.denominator == 12 and counts.votes_needed == 7
    assert counts.present_of_expected == 9 and counts.attendance_rate == 0.75
    assert not counts.too_few_voters and counts.unmarked == []
    # The exempt and the transferred member can never be recorded absent.
    with pytest.raises(ValidationError, match="không phải dự họp"):
        att.mark(session, ACTOR, meeting, people[0].id, Mark(status="absent", excused=False), now=at(20, 0))

    motion = votes.open_motion(session, ACTOR, meeting, "Thông qua nghị quyết tháng 11", "open", at(21, 0))
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=7, disagree=2, abstain=0)
    closed = votes.close_motion(session, ACTOR, meeting, motion, at(21, 5))
    assert (closed.agree, closed.denominator, closed.votes_needed, closed.passed) == (7, 12, 7, True)
    second = votes.open_motion(session, ACTOR, meeting, "Phương án khác", "open", at(21, 6))
    votes.set_in_person_counts(session, ACTOR, meeting, second, agree=6, disagree=3, abstain=0)
    assert votes.close_motion(session, ACTOR, meeting, second, at(21, 8)).passed is False


def test_case_c2_probationary_and_attached_members(session):
    home = new_cell(session, "HOME")
    elsewhere = organisations.create_organisation(session, ACTOR, kind=OrgKind.CELL, name="Chi bộ nơi khác", code="ELSE",
                                                  parent=organisations.get_organisation(session, home.parent_id),
                                                  created_on=dt.date(2020, 1, 1))
    officials = [add_member(session, home, f"Chính Thức {i}") for i in range(10)]
    probationary = [add_member(session, home, f"Dự Bị {i}", status="dự bị", admitted=dt.date(2026, 6, 1))
                    for i in range(2)]
    guest = add_member(session, elsewhere, "Khách Sinh Hoạt")
    members.add_period(session, ACTOR, guest, PeriodInput(kind=PeriodKind.TRANSFER_OUT, start_on="2026-10-01",
                                                          end_on="2027-03-31", host_org_name=home.name,
                                                          host_cell_id=home.id))
    meeting = open_meeting(session, home)
    for p in [*officials, *probationary, guest]:
        present(session, meeting, p, AttendanceMode.ONLINE if p is guest else AttendanceMode.IN_PERSON)
    counts = att.counts(att.roster(session, meeting))
    assert (counts.total, counts.official, counts.probationary, counts.attached) == (13, 10, 2, 1)
    assert (counts.present, counts.present_official, counts.present_probationary, counts.present_attached) == (13, 10, 2, 1)
    assert counts.denominator == 10 and len(counts.voters_present) == 10

    motion = votes.open_motion(session, ACTOR, meeting, "Kết nạp đảng viên mới", "open", at(20, 0))
    for p in officials[:6]:
        votes.cast(session, meeting, motion, p.id, "agree", now=at(20, 1))
    with pytest.raises(ValidationError, match="Đảng viên dự bị không có quyền biểu quyết"):
        votes.cast(session, meeting, motion, probationary[0].id, "agree", now=at(20, 2))
    with pytest.raises(ValidationError, match="sinh hoạt tạm thời không biểu quyết"):
        votes.cast(session, meeting, motion, guest.id, "agree", now=at(20, 2))
    closed = votes.close_motion(session, ACTOR, meeting, motion, at(20, 5))
    assert (closed.agree, closed.denominator, closed.passed) == (6, 10, True)


def add_interval(session, meeting, member, start, end):
    presence.record_join(session, meeting.id, member.id, None, "member", start)
    presence.record_leave(session, meeting.id, member.id, None, "member", end)


def test_case_c5_online_presence_with_reconnections(session):
    cell = new_cell(session)
    x = add_member(session, cell, "Nguyễn Văn Xuân")
    y = add_member(session, cell, "Trần Thị Yến")
    z = add_member(session, cell, "Lê Văn Không")
    meeting = open_meeting(session, cell)
    add_interval(session, meeting, x, at(19, 30), at(19, 50))
    add_interval(session, meeting, x, at(19, 51), at(21, 30))
    add_interval(session, meeting, y, at(20, 40), at(21, 30))
    mt.change_status(session, ACTOR, meeting, MeetingStatus.CLOSED, now=at(21, 30))

    summary = att.online_presence(session, meeting, at(21, 30))
    assert summary[x.id].spans == ((at(19, 30), at(21, 30)),)
    assert summary[x.id].minutes == 120 and summary[y.id].minutes == 50
    records = {r.member_id: r for r in att.refresh_online(session, meeting, at(21, 30))}
    assert records[x.id].status == AttendanceStatus.PRESENT and records[x.id].mode == AttendanceMode.ONLINE
    assert records[x.id].suggestion == "present" and not records[x.id].confirmed
    assert records[y.id].status == AttendanceStatus.UNMARKED and records[y.id].suggestion == "partial"
    assert records[y.id].online_minutes == 50
    assert records[z.id].online_minutes is None and records[z.id].status == AttendanceStatus.UNMARKED
    # The secretary decides Y (a first decision, even after the meeting: no amendment) ...
    att.mark(session, ACTOR, meeting, y.id, Mark(status="present", mode="online"), now=at(21, 40))
    assert att.amendments(session, meeting.id) == []
    # ... and changing a decision after the meeting closed needs a reason and is an amendment.
    with pytest.raises(ValidationError, match="lý do điều chỉnh"):
        att.mark(session, ACTOR, meeting, y.id, Mark(status="absent", excused=False), now=at(21, 45))
    att.mark(session, ACTOR, meeting, y.id, Mark(status="absent", excused=False), now=at(21, 45),
             amendment_reason="Chỉ nghe 10 phút rồi mất sóng")
    att.mark(session, ACTOR, meeting, y.id, Mark(status="present", mode="online"), now=at(21, 50),
             amendment_reason="Chi ủy chấp nhận: tham dự từ 20:40 do mất sóng")
    first, second = att.amendments(session, meeting.id)
    assert (first.before["status"], first.after["status"]) == ("present", "absent")
    assert second.reason.startswith("Chi ủy chấp nhận")
    # A secretary's mark is final: refreshing online presence does not undo it.
    records = {r.member_id: r for r in att.refresh_online(session, meeting, at(21, 45))}
    assert records[y.id].status == AttendanceStatus.PRESENT and records[y.id].confirmed


def test_roster_is_a_snapshot_of_the_day(session):
    cell = new_cell(session)
    people = [add_member(session, cell, f"Người {i}") for i in range(3)]
    meeting = open_meeting(session, cell)
    first = att.roster(session, meeting)
    assert len(first) == 3 and all(r.status == AttendanceStatus.UNMARKED for r in first)
    assert len(att.roster(session, meeting)) == 3  # idempotent
    exempt_later = members.add_period(session, ACTOR, people[0], PeriodInput(
        kind=PeriodKind.EXEMPT, start_on="2026-12-01", decision_number="9", reason="Ốm"))
    assert exempt_later and att.record_of(session, meeting, people[0].id).expected


def test_marks_are_validated(session):
    cell = new_cell(session)
    p = add_member(session, cell, "Người Được Điểm Danh")
    meeting = open_meeting(session, cell)
    with pytest.raises(ValidationError, match="có lý do hay không"):
        att.mark(session, ACTOR, meeting, p.id, Mark(status="absent"), now=at(20, 0))
    with pytest.raises(ValidationError, match="lý do cụ thể"):
        att.mark(session, ACTOR, meeting, p.id, Mark(status="absent", excused=True, reason_category="illness",
                                                     reason_text="  "), now=at(20, 0))
    with pytest.raises(ValidationError, match="không hợp lệ"):
        att.mark(session, ACTOR, meeting, p.id, Mark(status="có mặt"), now=at(20, 0))


def test_dues_are_recorded_per_month(session):
    cell = new_cell(session)
    p = add_member(session, cell, "Người Đóng Đảng Phí")
    meeting = open_meeting(session, cell)
    att.record_dues(session, ACTOR, meeting, p.id, "unpaid", at(20, 0))
    att.record_dues(session, ACTOR, meeting, p.id, "paid_transfer", at(20, 5))
    dues = att.dues_for_month(session, cell.id, dt.date(2026, 11, 1))
    assert dues[p.id].status == att.DuesStatus.PAID_TRANSFER and dues[p.id].month == dt.date(2026, 11, 1)
    assert len(session.scalars(select(att.DuesRecord)).all()) == 1
