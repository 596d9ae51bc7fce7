"""Meeting rules and generated meetings, with concrete dates (issue 3, first acceptance point)."""

import datetime as dt

import pytest
from sqlalchemy import select

from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import ValidationError
from meetings.organisation.organisations import Organisation
from meetings.planning import agenda, dates, schedules
from meetings.planning.meetings import Meeting, MeetingKind, MeetingStatus
from meetings.planning.schedules import RuleInput, ThematicInput

ACTOR = Actor.system("test")


def at(*args):
    return dt.datetime(*args, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def regular_of(session, cell_id, kind=MeetingKind.REGULAR):
    return list(session.scalars(select(Meeting).where(Meeting.cell_id == cell_id, Meeting.kind == kind,
                                                      Meeting.status != MeetingStatus.CANCELLED)
                                .order_by(Meeting.starts_at)))


def local_starts(meetings):
    return [m.starts_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") for m in meetings]


def day5(**kw):
    return RuleInput(pattern="monthday", monthday=5, start_time="19:30", duration_minutes=120, **kw)


def first_saturday(**kw):
    return RuleInput(pattern="weekday", ordinal=1, weekday="SA", start_time="08:00", duration_minutes=120, **kw)


def test_day_5_at_1930_yields_the_twelve_right_meetings(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, day5(), None, now=at(2026, 11, 27, 10, 0), valid_from="2026-12-01")
    meetings = regular_of(session, cell.id)
    assert local_starts(meetings) == [
        "2026-12-05 19:30", "2027-01-05 19:30", "2027-02-05 19:30", "2027-03-05 19:30", "2027-04-05 19:30",
        "2027-05-05 19:30", "2027-06-05 19:30", "2027-07-05 19:30", "2027-08-05 19:30", "2027-09-05 19:30",
        "2027-10-05 19:30", "2027-11-05 19:30",
    ]
    # Stored in UTC: 19:30 in Hà Nội is 12:30 UTC.
    assert meetings[0].starts_at == dt.datetime(2026, 12, 5, 12, 30, tzinfo=dt.UTC)
    assert meetings[0].title == "Sinh hoạt thường kỳ tháng 12/2026"
    rule = schedules.active_rules(session, cell.id)[MeetingKind.REGULAR]
    assert rule.rrule == "FREQ=MONTHLY;BYMONTHDAY=5" and rule.description == "Ngày 5 hằng tháng"
    # Each generated meeting starts with the prescribed agenda: dues first, minutes last.
    items = [i.title for i in agenda.items_of(session, meetings[0].id)]
    assert items[0] == "Thu đảng phí" and items[-1].startswith("Thông qua biên bản")
    # Running the generation again changes nothing.
    assert schedules.sync_cell(session, ACTOR, cell, at(2026, 11, 27, 10, 0)) == {"created": 0, "updated": 0,
                                                                                   "removed": 0}


def test_first_saturday_across_2026_includes_1_august(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, first_saturday(), None, now=at(2025, 12, 15, 9, 0),
                        valid_from="2026-01-01")
    assert [m.local_date.isoformat() for m in regular_of(session, cell.id)] == [
        "2026-01-03", "2026-02-07", "2026-03-07", "2026-04-04", "2026-05-02", "2026-06-06",
        "2026-07-04", "2026-08-01", "2026-09-05", "2026-10-03", "2026-11-07", "2026-12-05",
    ]
    assert schedules.active_rules(session, cell.id)[MeetingKind.REGULAR].description == "Thứ Bảy đầu tiên của tháng"


def test_day_31_falls_back_to_the_last_day_so_no_month_is_skipped(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, RuleInput(pattern="monthday", monthday=31, start_time="19:00"),
                        None, now=at(2026, 12, 20, 9, 0), valid_from="2027-01-01")
    dates = [m.local_date.isoformat() for m in regular_of(session, cell.id)]
    assert dates[:4] == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"] and len(dates) == 12


def test_rule_change_moves_only_untouched_future_meetings(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, day5(), None, now=at(2026, 11, 27, 10, 0), valid_from="2026-12-01")
    by_month = {m.local_date.strftime("%Y-%m"): m for m in regular_of(session, cell.id)}
    # The secretary moves February's meeting by hand (touched), with a reason.
    dates.move_meeting(session, ACTOR, by_month["2027-02"], at(2027, 2, 9, 19, 30), "Trùng Tết Nguyên đán",
                           now=at(2026, 11, 27, 10, 0))
    ids = {k: m.id for k, m in by_month.items()}
    # In January 2027 (December's and January's meetings are past) the cell switches to the
    # first Saturday.
    schedules.set_rules(session, ACTOR, cell, first_saturday(), None, now=at(2027, 1, 10, 9, 0))
    after = {m.local_date.strftime("%Y-%m"): m for m in regular_of(session, cell.id)}
    assert after["2026-12"].local_date == dt.date(2026, 12, 5)  # past: stays
    assert after["2027-01"].local_date == dt.date(2027, 1, 5)  # past: stays
    assert after["2027-02"].local_date == dt.date(2027, 2, 9)  # edited: stays
    assert after["2027-03"].local_date == dt.date(2027, 3, 6)  # untouched future: follows the rule
    assert after["2027-03"].local_start.hour == 8
    assert after["2027-11"].local_date == dt.date(2027, 11, 6)
    # The followers are the same meetings (same calendar UID), not new ones.
    assert all(after[k].id == ids[k] for k in ids)
    assert after["2027-03"].sequence == 1 and after["2027-03"].moved_reason == schedules.CHANGED_BY_RULE
    # The window moved on: December 2027 and January 2028 were added, one meeting per month.
    assert after["2027-12"].local_date == dt.date(2027, 12, 4) and after["2028-01"].local_date == dt.date(2028, 1, 1)
    assert len(after) == len(regular_of(session, cell.id))


def test_a_rule_from_a_later_month_leaves_the_months_before_it(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, day5(), None, now=at(2026, 11, 27, 10, 0), valid_from="2026-12-01")
    schedules.set_rules(session, ACTOR, cell, first_saturday(), None, now=at(2026, 11, 28, 10, 0),
                        valid_from="2027-02-01")
    dates = [m.local_date.isoformat() for m in regular_of(session, cell.id)]
    assert dates[:4] == ["2026-12-05", "2027-01-05", "2027-02-06", "2027-03-06"] and len(dates) == 12


def test_moving_needs_a_reason_and_is_logged(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, day5(), None, now=at(2026, 11, 27, 10, 0), valid_from="2026-12-01")
    meeting = regular_of(session, cell.id)[0]
    for reason in ("", "   ", None):
        with pytest.raises(ValidationError, match="phải ghi rõ lý do"):
            dates.move_meeting(session, ACTOR, meeting, at(2026, 12, 6, 19, 30), reason,
                                   now=at(2026, 11, 27, 10, 0))
    assert meeting.local_date == dt.date(2026, 12, 5) and meeting.sequence == 0 and not meeting.touched
    with pytest.raises(ValidationError, match="phải ghi rõ lý do"):
        schedules.cancel_meeting(session, ACTOR, meeting, " ", now=at(2026, 11, 27, 10, 0))
    dates.move_meeting(session, ACTOR, meeting, at(2026, 12, 6, 19, 30), "Trùng lịch bầu cử",
                           now=at(2026, 11, 27, 10, 0))
    assert meeting.sequence == 1 and meeting.touched and meeting.moved_reason == "Trùng lịch bầu cử"
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "meeting.move")).one()
    assert entry.note == "Trùng lịch bầu cử" and entry.before["starts_at"].startswith("2026-12-05")
    with pytest.raises(ValidationError, match="tương lai"):
        dates.move_meeting(session, ACTOR, meeting, at(2026, 11, 1, 19, 30), "Lý do",
                               now=at(2026, 11, 27, 10, 0))


def test_committee_meetings_and_combined_thematic_sessions(session, world):
    cell = session.get(Organisation, world.id("A"))
    cell.has_committee = True
    schedules.set_rules(session, ACTOR, cell, day5(committee_days_before=3),
                        ThematicInput(mode="combined", month_of_quarter=3, topic="Học tập và làm theo Bác"),
                        now=at(2026, 11, 27, 10, 0), valid_from="2026-12-01")
    committee = regular_of(session, cell.id, MeetingKind.COMMITTEE)
    assert local_starts(committee)[:2] == ["2026-12-02 19:30", "2027-01-02 19:30"] and len(committee) == 12
    combined = [m for m in regular_of(session, cell.id) if m.combined_thematic]
    assert [m.local_date.month for m in combined] == [12, 3, 6, 9]
    assert all(m.expected_minutes >= 120 and m.topic == "Học tập và làm theo Bác" for m in combined)
    assert any("chuyên đề" in i.title for i in agenda.items_of(session, combined[0].id))


def test_separate_thematic_meetings_each_quarter(session, world):
    cell = world.orgs["A"]
    schedules.set_rules(session, ACTOR, cell, day5(),
                        ThematicInput(mode="separate", month_of_quarter=2, pattern="monthday", monthday=20,
                                      start_time="14:00", duration_minutes=120),
                        now=at(2026, 11, 27, 10, 0), valid_from="2026-12-01")
    thematic = regular_of(session, cell.id, MeetingKind.THEMATIC)
    assert [m.local_date.isoformat() for m in thematic] == ["2027-02-20", "2027-05-20", "2027-08-20", "2027-11-20"]
    assert thematic[0].topic == "Chuyên đề quý I/2027 (chưa đặt tên)"


def test_bad_rules_are_refused_and_nothing_is_generated(session, world):
    cell = world.orgs["A"]
    for bad, message in (
        (RuleInput(pattern="monthday", monthday=32), "từ 1 đến 31"),
        (RuleInput(pattern="monthday", monthday="năm"), "không phải số"),
        (RuleInput(pattern="weekday", ordinal=1, weekday="XX"), "ngày trong tuần"),
        (RuleInput(pattern="monthday", monthday=5, start_time="25:99"), "Giờ bắt đầu"),
    ):
        with pytest.raises(ValidationError, match=message):
            schedules.set_rules(session, ACTOR, cell, bad, None, now=at(2026, 11, 27, 10, 0))
    assert regular_of(session, cell.id) == []


def test_duration_warnings_follow_hd42_and_the_cell_override(session, world):
    cell = world.orgs["A"]
    meeting = schedules.create_adhoc(session, ACTOR, cell, kind=MeetingKind.REGULAR, starts_at=at(2026, 12, 5, 19, 30),
                                     now=at(2026, 11, 27, 10, 0))
    dates.record_actual_times(session, ACTOR, meeting, at(2026, 12, 5, 19, 30), at(2026, 12, 5, 20, 45),
                                  now=at(2026, 12, 5, 21, 0))
    assert meeting.duration_minutes == 75
    assert "dưới 90 phút" in schedules.meeting_duration_warning(session, meeting)
    meeting.combined_thematic = True
    dates.record_actual_times(session, ACTOR, meeting, at(2026, 12, 5, 19, 30), at(2026, 12, 5, 21, 10),
                                  now=at(2026, 12, 5, 21, 30))
    assert "dưới 120 phút" in schedules.meeting_duration_warning(session, meeting)  # 100 minutes
    schedules.set_minimums(session, ACTOR, cell, 60, 90, "Quyết định 15-QĐ/ĐU ngày 01/11/2026")
    assert schedules.meeting_duration_warning(session, meeting) is None
    with pytest.raises(ValidationError, match="sau giờ bắt đầu"):
        dates.record_actual_times(session, ACTOR, meeting, at(2026, 12, 5, 21, 0), at(2026, 12, 5, 20, 0),
                                      now=at(2026, 12, 5, 22, 0))
