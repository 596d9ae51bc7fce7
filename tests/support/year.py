"""A year of meetings for the records and audit tests, held through the domain operations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import (
    Meeting,
    MeetingKind,
    MeetingStatus,
    change_status,
    create_meeting,
)
from meetings.proceedings import attendance
from meetings.proceedings.attendance import Mark
from tests.support.world import adopt_minutes

ACTOR = Actor.system("test")

MARKS = {
    "in_person": Mark(status="present", mode="in_person"),
    "online": Mark(status="present", mode="online"),
    "unexcused": Mark(status="absent", excused=False),
    "excused": Mark(status="absent", excused=True, reason_category="illness", reason_text="Ốm, có giấy bác sĩ"),
}


def at(day: dt.date, hour: int = 19, minute: int = 30) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LOCAL_TZ)


def hold(session: Session, cell: Organisation, day: dt.date, marks: dict[int, str], *,
         kind: MeetingKind = MeetingKind.REGULAR, minutes_long: int = 120, planned: dt.date | None = None,
         combined: bool = False, adopt_after: dt.timedelta | None = None, everyone: str | None = "in_person",
         actual_times: bool = False) -> Meeting:
    """Hold a meeting of ``cell`` on ``day`` at 19:30: open it, mark the given members (and,
    with ``everyone``, every other expected member that way), close it after ``minutes_long``.
    ``planned``: the day the cell's rule had planned (Meeting.occurrence_on). ``adopt_after``:
    adopt version 1 of the minutes that long after the end."""
    start = at(day)
    meeting = create_meeting(session, ACTOR, cell, kind=kind, starts_at=start, combined_thematic=combined,
                             topic="Học tập chuyên đề" if kind == MeetingKind.THEMATIC or combined else None)
    meeting.occurrence_on = planned
    change_status(session, ACTOR, meeting, MeetingStatus.OPEN, now=start)
    for record in attendance.roster(session, meeting):
        choice = marks.get(record.member_id, everyone if record.expected else None)
        if choice is not None:
            attendance.mark(session, ACTOR, meeting, record.member_id, MARKS[choice], now=start)
    end = start + dt.timedelta(minutes=minutes_long)
    if actual_times:
        meeting.actual_start_at, meeting.actual_end_at = start, end
    change_status(session, ACTOR, meeting, MeetingStatus.CLOSED, now=end)
    if adopt_after is not None:
        when = end + adopt_after
        adopt_minutes(session, meeting, when)
    session.flush()
    return meeting


def excuse_later(session: Session, meeting: Meeting, member_id: int, when: dt.datetime) -> None:
    """The secretary accepts the reason after the meeting (an audit-logged amendment)."""
    attendance.mark(session, ACTOR, meeting, member_id,
                    Mark(status="absent", excused=True, reason_category="work",
                         reason_text="Đi công tác đột xuất, có xác nhận của cơ quan"),
                    now=when, amendment_reason="Chi ủy chấp nhận lý do sau khi xác minh")
