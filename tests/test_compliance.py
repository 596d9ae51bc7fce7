"""Schedule compliance per cell and year, and case C6 (shared/domain/cases.md)."""

import datetime as dt

from sqlalchemy import event

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning import compliance, dates, schedules
from meetings.planning.compliance import Mark
from meetings.planning.meetings import MeetingKind

ACTOR = Actor.system("test")


def at(*args):
    return dt.datetime(*args, tzinfo=LOCAL_TZ)


def hold(session, cell, kind, start, minutes, **kw):
    meeting = schedules.create_adhoc(session, ACTOR, cell, kind=kind, starts_at=start, now=start - dt.timedelta(days=1),
                                     **kw)
    dates.record_actual_times(session, ACTOR, meeting, start, start + dt.timedelta(minutes=minutes),
                                  now=start + dt.timedelta(hours=5))
    return meeting


def test_case_c6_short_meeting_and_quarter_without_thematic(session, world):
    cell = session.get(Organisation, world.id("A"))
    # 2026: regular meetings January–September; July's lasted 75 minutes; thematic in Q1 only
    # (combined with March's regular meeting) and Q3; nothing in Q2.
    for month in range(1, 10):
        meeting = hold(session, cell, MeetingKind.REGULAR, at(2026, month, 5, 19, 30), 75 if month == 7 else 120)
        if month == 3:
            meeting.combined_thematic = True
    hold(session, cell, MeetingKind.THEMATIC, at(2026, 8, 20, 14, 0), 120, topic="Chuyển đổi số")
    hold(session, cell, MeetingKind.EXTRAORDINARY, at(2026, 10, 12, 19, 30), 60)  # does not count for October
    schedules.create_adhoc(session, ACTOR, cell, kind=MeetingKind.REGULAR, starts_at=at(2026, 12, 5, 19, 30),
                           now=at(2026, 11, 20, 9, 0))
    report = compliance.for_cells(session, [cell], 2026, at(2026, 11, 27, 10, 0))[cell.id]
    marks = {m.month: m.regular.mark for m in report.months}
    assert marks[1] == marks[2] == marks[8] == Mark.HELD
    assert marks[7] == Mark.TOO_SHORT and "75 phút, dưới 90 phút (HD 42)" in report.months[6].regular.note
    assert marks[10] == Mark.MISSING and marks[11] == Mark.MISSING  # extraordinary ≠ regular
    assert marks[12] == Mark.SCHEDULED
    quarters = {q.quarter: q.thematic.mark for q in report.quarters}
    assert quarters == {1: Mark.HELD, 2: Mark.MISSING, 3: Mark.HELD, 4: Mark.MISSING}
    assert report.months[0].committee is None  # no chi ủy in this cell


def test_committee_meetings_and_override_for_small_cells(session, world):
    cell = session.get(Organisation, world.id("A"))
    cell.has_committee = True
    hold(session, cell, MeetingKind.REGULAR, at(2026, 5, 5, 19, 30), 70)
    hold(session, cell, MeetingKind.COMMITTEE, at(2026, 5, 2, 19, 30), 45)
    now = at(2026, 6, 10, 9, 0)
    report = compliance.for_cells(session, [cell], 2026, now)[cell.id]
    assert report.months[4].regular.mark == Mark.TOO_SHORT and report.months[4].committee.mark == Mark.HELD
    assert report.months[3].committee.mark == Mark.MISSING and report.months[8].committee.mark == Mark.NOT_YET
    schedules.set_minimums(session, ACTOR, cell, 60, 90, "Quyết định 20-QĐ/ĐU")
    assert compliance.for_cells(session, [cell], 2026, now)[cell.id].months[4].regular.mark == Mark.HELD


def test_a_whole_province_takes_three_queries(database, world):
    with database.session() as s:
        for key in ("A", "B", "C"):
            hold(s, s.get(Organisation, world.id(key)), MeetingKind.REGULAR, at(2026, 3, 5, 19, 30), 100)
    statements = []
    with database.session() as s:
        province = s.get(Organisation, world.id("P"))

        def count(*args):
            statements.append(args[2])

        event.listen(database.engine, "before_cursor_execute", count)
        try:
            reports = compliance.for_subtree(s, province, 2026, at(2026, 11, 27, 10, 0))
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
    assert len(statements) == 3
    assert set(reports) == {world.id(k) for k in ("A", "B", "C")}
    assert all(r.months[2].regular.mark == Mark.HELD for r in reports.values())


def test_compliance_page_highlights_gaps(world, client_as, database):
    with database.session() as s:
        hold(s, s.get(Organisation, world.id("A")), MeetingKind.REGULAR, at(2026, 7, 5, 19, 30), 75)
    page = client_as("aud_x").get(f"/cells/{world.id('A')}/compliance?year=2026").text
    assert "Nền nếp sinh hoạt năm 2026" in page
    assert "Đã họp, thời lượng ngắn" in page and "75 phút, dưới 90 phút" in page
    # January–November (July too short, the rest missing; December is still ahead) and all four quarters.
    assert page.count('class="row gap"') == 15
    assert "mục cần chú ý" in page
    assert client_as("mem_a").get(f"/cells/{world.id('A')}/compliance").status_code == 403
    assert client_as("sec_a").get(f"/cells/{world.id('A')}/compliance?year=abc").status_code == 400
