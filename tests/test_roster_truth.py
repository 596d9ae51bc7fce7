"""The roster after the meeting (issue 13): confirming the room's suggestions is no amendment
(finding 3), the CSV shows what the page shows (finding 6), and a decision taken after the
meeting flows to the roster, the flags, the notices and the minutes page (finding 11)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select

from meetings.evaluation import records, three_month
from meetings.evaluation.three_month import Level, Rule
from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning import absences
from meetings.planning.meetings import (
    Meeting,
    MeetingKind,
    MeetingStatus,
    change_status,
    create_meeting,
)
from meetings.planning.notices import Notice
from meetings.proceedings import attendance, presence
from meetings.proceedings.attendance import AttendanceAmendment, AttendanceStatus, Mark
from tests.support.web import post
from tests.support.world import adopt_minutes
from tests.support.year import hold

ACTOR = Actor.system("test")


def at(hour: int, minute: int = 0, day: int = 5) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


@pytest.fixture
def held(database, world, clock):
    """Cell A's meeting of 5 December 19:30–21:30: a2 and a4 connected online the whole
    time, a1 marked present in the hall; closed at 21:30, nobody has opened the roster since."""
    with database.session() as s:
        meeting = create_meeting(s, ACTOR, s.get(Organisation, world.id("A")), kind=MeetingKind.REGULAR,
                                 starts_at=at(19, 30), remote_open=True)
        change_status(s, ACTOR, meeting, MeetingStatus.OPEN, now=at(19, 30))
        for key in ("a2", "a4"):
            presence.record_join(s, meeting.id, world.id(key), world.accounts.get("mem_a" if key == "a2" else "away_a"),
                                 "member", at(19, 31))
        attendance.mark(s, ACTOR, meeting, world.id("a1"), Mark(status="present", mode="in_person"), now=at(19, 35))
        for key in ("a2", "a4"):
            presence.record_leave(s, meeting.id, world.id(key), None, "member", at(21, 30))
        change_status(s, ACTOR, meeting, MeetingStatus.CLOSED, now=at(21, 30))
        meeting_id = meeting.id
    clock.now = at(21, 35)
    return meeting_id


def rows_of(client, meeting_id):  # type: ignore[no-untyped-def]
    text = client.get(f"/meetings/{meeting_id}/attendance.csv").content.decode("utf-8-sig")
    return {row[0]: row for row in csv.reader(io.StringIO(text))}


def test_the_csv_downloaded_first_shows_what_the_page_shows(world, client_as, held):
    sec = client_as("sec_a")
    rows = rows_of(sec, held)  # before anyone opened the roster page
    assert rows["Phạm Thị Hường"][4] == "Có mặt trực tuyến" and rows["Phạm Thị Hường"][7] == "119"
    assert rows["Trần Thị Bích Ngọc"][4] == "Có mặt trực tuyến"
    page = sec.get(f"/meetings/{held}/attendance").text
    assert page.count("Có mặt trực tuyến</span> <span class=\"badge badge-muted\">chờ xác nhận") == 2
    assert rows_of(sec, held) == rows
    counts = sec.get(f"/meetings/{held}/attendance.json").json()["counts"]
    assert (counts["present"], counts["present_online"], counts["present_in_person"]) == (3, 2, 1)


def test_confirming_the_rooms_suggestions_is_one_action_and_never_an_amendment(database, world, client_as, held):
    sec = client_as("sec_a")
    a2, a4 = world.id("a2"), world.id("a4")
    page = sec.get(f"/meetings/{held}/attendance").text
    assert "Xác nhận tất cả (2)" in page
    # A suggestion decided otherwise (a2 was in the hall after all) is a first decision: no reason.
    assert post(sec, f"/meetings/{held}/attendance/{a2}", {"mark": "in_person"}).status_code == 303
    r = post(sec, f"/meetings/{held}/attendance/confirm-online")
    assert r.status_code == 303
    with database.session() as s:
        line = attendance.record_of(s, s.get(Meeting, held), a4)
        assert line.confirmed and line.status == AttendanceStatus.PRESENT and line.mode.value == "online"
        assert s.scalars(select(AttendanceAmendment)).all() == []
    assert "chờ xác nhận" not in sec.get(f"/meetings/{held}/attendance").text
    assert rows_of(sec, held)["Phạm Thị Hường"][4] == "Có mặt trực tuyến"
    # Dues beside a decided line need no reason either.
    assert post(sec, f"/meetings/{held}/attendance/{a4}", {"mark": "online", "dues": "paid_transfer"}).status_code == 303
    # Changing a decision is an amendment: it needs a reason and shows who, whose line, when and what.
    r = post(sec, f"/meetings/{held}/attendance/{a4}", {"mark": "in_person"})
    assert r.status_code == 400 and "lý do điều chỉnh" in r.text
    assert post(sec, f"/meetings/{held}/attendance/{a4}", {"mark": "in_person", "amendment_reason": "Về kịp, dự tại hội trường"}).status_code == 303
    page = sec.get(f"/meetings/{held}/attendance").text
    amendment = page.split('class="row amendment"')[1].split("</li>")[0]
    for part in ("Phạm Thị Hường", "Có mặt trực tuyến → Có mặt trực tiếp", "Nguyễn Văn Ấn sửa", "21:35, 05/12/2026",
                 "Về kịp, dự tại hội trường"):
        assert part in amendment, part
    with database.session() as s:
        assert len(s.scalars(select(AttendanceAmendment)).all()) == 1


def test_an_absence_approved_after_the_meeting_flows_to_roster_flags_notices_and_minutes(database, world, client_as,
                                                                                         clock):
    a2 = world.id("a2")
    with database.session() as s:
        cell = s.get(Organisation, world.id("A"))
        for month in (2, 3):
            hold(s, cell, dt.date(2026, month, 5), {a2: "unexcused"})
        meeting = create_meeting(s, ACTOR, cell, kind=MeetingKind.REGULAR, starts_at=at(19, 30))
        request = absences.file_request(s, ACTOR, meeting, a2, "Đi viện thăm mẹ ốm ở Huế", now=at(9, 0, day=4))
        change_status(s, ACTOR, meeting, MeetingStatus.OPEN, now=at(19, 30))
        for record in attendance.roster(s, meeting):
            if record.expected:
                mark = Mark(status="absent", excused=False) if record.member_id == a2 else Mark(status="present")
                attendance.mark(s, ACTOR, meeting, record.member_id, mark, now=at(19, 40))
        change_status(s, ACTOR, meeting, MeetingStatus.CLOSED, now=at(21, 30))
        adopt_minutes(s, meeting, at(21, 35))
        assert three_month.flags_of_member(s, a2, 2026)[Rule.ABSENCE].level == Level.REMOVAL_REVIEW
        meeting_id, request_id = meeting.id, request.id
    clock.now = at(8, 0, day=7)
    sec = client_as("sec_a")
    assert "khớp với danh sách điểm danh" in sec.get(f"/meetings/{meeting_id}/minutes").text

    r = post(sec, f"/absences/{request_id}/decide", {"decision": "approve"})
    assert r.status_code == 303
    with database.session() as s:
        line = attendance.record_of(s, s.get(Meeting, meeting_id), a2)
        assert line.status == AttendanceStatus.ABSENT and line.excused and line.reason_text == "Đi viện thăm mẹ ốm ở Huế"
        assert records.record_of(s, a2, 2026).absence_months == [2, 3]
        assert three_month.flags_of_member(s, a2, 2026)[Rule.ABSENCE].level == Level.WARNING
        told = s.scalars(select(Notice).where(Notice.url == f"/members/{a2}/record?year=2026",
                                              Notice.created_at == clock.now)).all()
        assert {n.member_id for n in told} == {world.id("a1"), None}  # the secretary, and the commune
        assert {n.organisation_id for n in told} == {None, world.id("X")} and all("Hạ mức theo dõi" in n.subject for n in told)
    page = sec.get(f"/meetings/{meeting_id}/attendance").text
    amendment = page.split('class="row amendment"')[1].split("</li>")[0]
    assert "Trần Thị Bích Ngọc" in amendment and "Vắng không có lý do → Vắng có lý do: Đi viện thăm mẹ ốm ở Huế" in amendment
    assert "Nguyễn Văn Ấn sửa" in amendment and "08:00, 07/12/2026" in amendment
    minutes_page = sec.get(f"/meetings/{meeting_id}/minutes").text
    assert "Số liệu điểm danh đã thay đổi sau khi biên bản phiên bản 1 được thông qua" in minutes_page
    assert "Vắng có lý do: 0 → 1 (thêm Trần Thị Bích Ngọc)" in minutes_page
    assert "Vắng không có lý do: 1 → 0 (bớt Trần Thị Bích Ngọc)" in minutes_page
