"""ICS files and member feeds, read back by two independent parsers.

``icalendar`` (the library that writes them) and ``ical`` (a separate, strict RFC 5545
implementation with pydantic models, as used by Home Assistant's calendars) must both accept
the output, with the same times in Asia/Ho_Chi_Minh, a stable UID, growing SEQUENCE and
METHOD:CANCEL for a cancelled meeting.
"""

import datetime as dt
import re

from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import members
from meetings.organisation.members import Member, PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation
from meetings.planning import calendars, dates, schedules
from meetings.planning.meetings import Meeting, MeetingKind
from tests.support.web import post

ACTOR = Actor.system("test")
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=LOCAL_TZ)


def both(ics: bytes):
    first = Calendar.from_ical(ics)
    second = IcsCalendarStream.calendar_from_ics(ics.decode())
    return first, second


def event_of(cal: Calendar):
    return next(iter(cal.walk("VEVENT")))


def test_meeting_ics_round_trip_uid_sequence_and_cancel(session, world):
    cell = session.get(Organisation, world.id("A"))
    meeting = schedules.create_adhoc(session, ACTOR, cell, kind=MeetingKind.REGULAR, now=NOW,
                                     starts_at=dt.datetime(2026, 12, 5, 19, 30, tzinfo=LOCAL_TZ), place="Nhà văn hóa")
    first, second = both(calendars.meeting_ics(meeting, cell, "https://chibo.example.vn", NOW))
    assert first["METHOD"] == "PUBLISH"
    assert [tz["TZID"] for tz in first.walk("VTIMEZONE")] == ["Asia/Ho_Chi_Minh"]
    event = event_of(first)
    start = event.decoded("DTSTART")
    assert start == dt.datetime(2026, 12, 5, 19, 30, tzinfo=LOCAL_TZ) and str(start.tzinfo) == "Asia/Ho_Chi_Minh"
    assert event.decoded("DTEND") - start == dt.timedelta(minutes=120)
    assert str(event["UID"]) == meeting.uid and event["SEQUENCE"] == 0
    assert "Chi bộ thôn An Lạc" in str(event["SUMMARY"]) and str(event["LOCATION"]) == "Nhà văn hóa"
    strict = second.events[0]
    assert strict.uid == meeting.uid and strict.sequence == 0
    assert strict.dtstart.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") == "2026-12-05 19:30"
    assert strict.dtstart.utcoffset() == dt.timedelta(hours=7)

    dates.move_meeting(session, ACTOR, meeting, dt.datetime(2026, 12, 6, 8, 0, tzinfo=LOCAL_TZ), "Trùng lịch",
                           now=NOW)
    first, second = both(calendars.meeting_ics(meeting, cell, "https://chibo.example.vn", NOW))
    event = event_of(first)
    assert str(event["UID"]) == meeting.uid and event["SEQUENCE"] == 1
    assert event.decoded("DTSTART") == dt.datetime(2026, 12, 6, 8, 0, tzinfo=LOCAL_TZ)
    assert "Lý do thay đổi: Trùng lịch" in str(event["DESCRIPTION"])
    assert second.events[0].sequence == 1

    schedules.cancel_meeting(session, ACTOR, meeting, "Bão", now=NOW)
    first, second = both(calendars.meeting_ics(meeting, cell, "https://chibo.example.vn", NOW))
    assert first["METHOD"] == "CANCEL"
    event = event_of(first)
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 2 and str(event["UID"]) == meeting.uid
    assert second.method == "CANCEL" and second.events[0].status.value == "CANCELLED"


def test_member_feed_has_the_members_expected_meetings_and_can_be_revoked(database, world, client, client_as, clock):
    with database.session() as s:
        cell = s.get(Organisation, world.id("A"))
        schedules.set_rules(s, ACTOR, cell, schedules.RuleInput(pattern="monthday", monthday=5, start_time="19:30"),
                            None, now=clock.now, valid_from="2026-12-01")
        # a2 is exempt in January: January's meeting is not in a2's calendar.
        members.add_period(s, ACTOR, s.get(Member, world.id("a2")), PeriodInput(
            kind=PeriodKind.EXEMPT, start_on=dt.date(2027, 1, 1), end_on=dt.date(2027, 1, 31),
            decision_number="01-NQ/CB", reason="Điều trị dài ngày"))
        uids = {m.local_date: m.uid for m in s.query(Meeting).filter(Meeting.cell_id == world.id("A"))}
    mem = client_as("mem_a")
    r = post(mem, f"/members/{world.id('a2')}/calendar-feed", {"next": f"/cells/{world.id('A')}/schedule"})
    assert r.status_code == 303
    page = mem.get(r.headers["location"]).text
    url = re.search(r'value="(http://[^"]+/calendar/[^"]+\.ics)"', page).group(1)
    path = url.split("8000", 1)[1]
    assert "chỉ hiện một lần" in page
    feed = client.get(path)  # no login: the token is the key
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    first, second = both(feed.content)
    starts = sorted(e.decoded("DTSTART") for e in first.walk("VEVENT"))
    assert len(starts) == 11 and dt.date(2027, 1, 5) not in {d.date() for d in starts}
    assert {str(e["UID"]) for e in first.walk("VEVENT")} == {u for d, u in uids.items() if d != dt.date(2027, 1, 5)}
    assert len(second.events) == 11
    assert all(e.dtstart.astimezone(LOCAL_TZ).strftime("%H:%M") == "19:30" for e in second.events)
    # A new address revokes the old one; revoking leaves none.
    post(mem, f"/members/{world.id('a2')}/calendar-feed", {"action": "issue"})
    assert client.get(path).status_code == 404
    assert client.get("/calendar/doan-bua.ics").status_code == 404
    # Someone else's feed cannot be made.
    assert post(mem, f"/members/{world.id('a1')}/calendar-feed").status_code == 403
