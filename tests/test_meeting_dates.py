"""One date per meeting (issue 13, finding 1; decision 12): a meeting started on another day
than planned is a confirmed move, refused where it would give a month a second regular
meeting, and every record derived from the meeting follows the day it was held."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from meetings.evaluation import records, regularity
from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning import compliance, schedules
from meetings.planning.compliance import Mark
from meetings.planning.meetings import (
    Meeting,
    MeetingKind,
    MeetingStatus,
    change_status,
    create_meeting,
)
from meetings.planning.notices import Notice
from meetings.proceedings import attendance
from tests.support.web import post
from tests.support.world import add_meetings, adopt_minutes

ACTOR = Actor.system("test")


def test_retitle_follows_the_new_date_and_leaves_other_text():
    from meetings.planning.dates import retitle

    d, j = dt.date(2026, 12, 7), dt.date(2027, 1, 5)
    assert retitle("Sinh hoạt thường kỳ tháng 1/2027", j, d) == "Sinh hoạt thường kỳ tháng 12/2026"
    assert retitle("Họp bất thường ngày 05/01/2027", j, d) == "Họp bất thường ngày 07/12/2026"
    assert retitle("Sinh hoạt chuyên đề quý I/2027", j, d) == "Sinh hoạt chuyên đề quý IV/2026"
    assert retitle("Bàn việc tháng 3/2026 và tháng 1/2027", j, d) == "Bàn việc tháng 3/2026 và tháng 12/2026"


def test_a_start_on_another_day_is_a_confirmed_move_and_every_record_follows_it(database, world, client_as, clock):
    clock.set_local(2026, 11, 27, 10, 0)
    with database.session() as s:
        add_meetings(s, world, ("A",))  # December's regular meeting, on the 5th
        january = create_meeting(s, ACTOR, s.get(Organisation, world.id("A")), kind=MeetingKind.REGULAR,
                                 starts_at=dt.datetime(2027, 1, 5, 19, 30, tzinfo=LOCAL_TZ), place="Nhà văn hóa")
        january.occurrence_on = dt.date(2027, 1, 5)
        jan = january.id
    clock.set_local(2026, 12, 7, 19, 30)
    sec = client_as("sec_a")

    # December already has its regular meeting: refused, nothing changes.
    r = post(sec, f"/meetings/{jan}/open", {"reason": "Họp sớm"})
    assert r.status_code == 400 and "Tháng 12/2026 đã có sinh hoạt thường kỳ" in r.text
    with database.session() as s:
        december = s.get(Meeting, world.meetings["A"])
        schedules.cancel_meeting(s, ACTOR, december, "Trùng lịch bầu cử", now=clock.now)

    # Without December's, the start asks first and says what the move means; nothing changes.
    r = post(sec, f"/meetings/{jan}/open")
    assert r.status_code == 409 and "Bắt đầu cuộc họp khác ngày dự kiến?" in r.text
    assert "Tháng 1/2027 sẽ không còn cuộc họp thường kỳ" in r.text and "tháng 12/2026" in r.text
    with database.session() as s:
        m = s.get(Meeting, jan)
        assert m.status == MeetingStatus.SCHEDULED and m.local_date == dt.date(2027, 1, 5)

    r = post(sec, f"/meetings/{jan}/open", {"reason": "Đảng viên đi làm ăn xa về quê dịp cuối năm"})
    assert r.status_code == 303
    with database.session() as s:
        m = s.get(Meeting, jan)
        assert m.status == MeetingStatus.OPEN and m.local_date == dt.date(2026, 12, 7)
        assert m.occurrence_on == dt.date(2027, 1, 5)  # kept to judge on time / late
        assert m.title == "Sinh hoạt thường kỳ tháng 12/2026"
        assert m.moved_reason == "Đảng viên đi làm ăn xa về quê dịp cuối năm"
        move = s.scalars(select(AuditEntry).where(AuditEntry.action == "meeting.move_at_start")).one()
        assert move.note == m.moved_reason and move.before["starts_at"].startswith("2027-01-05")
        told = s.scalars(select(Notice).where(Notice.meeting_id == jan, Notice.event == "changed")).all()
        assert {n.member_id for n in told} >= {world.id("a2"), world.id("a4")}
        assert all("Lý do thay đổi: Đảng viên đi làm ăn xa" in n.body for n in told)
        for record in attendance.roster(s, m):
            if record.expected:
                attendance.mark(s, ACTOR, m, record.member_id, attendance.Mark(status="present", mode="in_person"),
                                now=clock.now)
        change_status(s, ACTOR, m, MeetingStatus.CLOSED, now=clock.now + dt.timedelta(minutes=100))
        adopt_minutes(s, m, clock.now + dt.timedelta(minutes=105))

    # Every record derived from it counts it on 7 December 2026.
    pdf = sec.get(f"/meetings/{jan}/minutes/v/1.pdf")
    assert 'filename="bien-ban-2026-12-07-v1.pdf"' in pdf.headers["content-disposition"]
    assert "THÁNG 12 NĂM 2026" in sec.get(f"/meetings/{jan}/minutes/v/1").text
    listing = sec.get(f"/cells/{world.id('A')}/minutes").text
    assert "07/12/2026 · thông qua 07/12/2026" in listing and "05/01/2027" not in listing
    with database.session() as s:
        a = s.get(Organisation, world.id("A"))
        report = compliance.for_cells(s, [a], 2026, clock.now)[a.id]
        assert report.months[11].regular.mark == Mark.HELD and report.months[11].regular.meeting_id == jan
        january_2027 = compliance.for_cells(s, [a], 2027, clock.now)[a.id].months[0].regular
        assert january_2027.meeting_id is None  # the month the move left without one
        audit = regularity.audit(s, s.get(Organisation, world.id("X")), 2026, 4, clock.now)
        cell = next(c for c in audit.cells if c.id == a.id)
        assert cell.months[2].cell.meeting_id == jan and cell.months[2].status == regularity.Regular.ON_TIME
        line = next(x for x in records.record_of(s, world.id("a2"), 2026).lines if x.meeting_id == jan)
        assert line.day == dt.date(2026, 12, 7) and line.title == "Sinh hoạt thường kỳ tháng 12/2026"
