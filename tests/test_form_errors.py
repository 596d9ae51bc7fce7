"""Forms given bad input answer a 4xx with a Vietnamese message, and store nothing.

Each test takes a snapshot of every table before the refused requests and compares it after
(``tests.support.snapshot``), then shows the same form accepts good input — so the refusal
is about the input, not a form that refuses everything.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from meetings.foundation.actors import Actor
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning.documents import MeetingDocument
from meetings.planning.meetings import Meeting, MeetingStatus, RemoteInvite, change_status
from meetings.proceedings import attendance, votes
from meetings.proceedings.votes import OpenVote
from tests.support.snapshot import stored
from tests.support.web import post
from tests.support.world import MEETING_START, schedule_objects

ACTOR = Actor.system("test")


def refused(response, *words: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.headers.get("location"), response.text[:300])
    for word in words:
        assert word in response.text, (word, response.text[-2000:])


@pytest.fixture
def objects(database, world, settings, clock):
    """Cell A's meeting of 5 December with a document and an absence request."""
    with database.session() as s:
        return schedule_objects(s, world, "A", "a2", settings.data_dir)


@pytest.fixture
def sec(client_as):
    return client_as("sec_a")


def test_attached_member_form_refuses_bad_input(sec, world, database):
    url = f"/cells/{world.id('A')}/attached/new"
    good = {"full_name": "Hoàng Văn Tạm", "birth_date": "1985-04-02", "admitted_on": "2012-05-19",
            "status": "chính thức", "card_number": "48777001", "home_org_name": "Chi bộ Công ty Sông Hồng",
            "start_on": "2026-11-01", "end_on": "2027-04-30"}
    before = stored(database)
    for change, words in (
        ({"start_on": ""}, ["Sinh hoạt tạm thời từ ngày"]),
        ({"start_on": "31/02/2026"}, ["Sinh hoạt tạm thời từ ngày"]),
        ({"end_on": "2026-10-01"}, []),  # ends before it starts
        ({"full_name": "  "}, ["Họ và tên"]),
        ({"birth_date": "hôm qua"}, ["Ngày sinh"]),
        ({"card_number": "48-777-ABC"}, ["Số thẻ"]),
        ({"card_number": world.members["a1"].card_number}, [world.members["a1"].card_number]),
        ({"status": "cảm tình"}, ["cảm tình"]),
        ({"home_org_name": ""}, []),
    ):
        r = post(sec, url, good | change)
        refused(r, *words)
        assert r.status_code == 400 or r.status_code == 409, change
        # The form comes back with what was typed, so nothing has to be typed again.
        assert "Hoàng Văn Tạm" in r.text or change.get("full_name") == "  "
        assert stored(database) == before, change
    assert post(sec, url, good).status_code == 303
    with database.session() as s:
        assert s.scalar(select(Member.id).where(Member.full_name == "Hoàng Văn Tạm")) is not None


def test_member_edit_refuses_bad_input_and_keeps_the_member(sec, world, database):
    a2 = world.id("a2")
    url = f"/members/{a2}/edit"
    page = sec.get(url)
    assert page.status_code == 200
    good = {"full_name": "Trần Thị Bích Ngọc", "birth_date": "1980-01-15", "admitted_on": "2010-05-19",
            "status": "chính thức", "card_number": world.members["a2"].card_number, "email": "ngoc@example.vn"}
    before = stored(database)
    for change, words in (
        ({"full_name": ""}, ["Họ và tên"]),
        ({"birth_date": "2031-01-01"}, ["Ngày sinh"]),
        ({"admitted_on": "15/13/2010"}, ["Ngày vào Đảng"]),
        ({"card_number": world.members["b2"].card_number}, [world.members["b2"].card_number]),
        ({"email": "ngoc-at-example"}, ["email"]),
        ({"status": "không rõ"}, ["không rõ"]),
    ):
        refused(post(sec, url, good | change), *words)
        assert stored(database) == before, change
    assert post(sec, url, good).status_code == 303
    with database.session() as s:
        assert s.get(Member, a2).email == "ngoc@example.vn"


def test_new_meeting_form_refuses_bad_input(sec, world, database):
    url = f"/cells/{world.id('A')}/meetings/new"
    good = {"kind": "extraordinary", "date": "2026-12-12", "time": "19:30", "expected_minutes": "120",
            "place": "Nhà văn hóa thôn", "topic": "", "title": "Họp bất thường về đê điều"}
    before = stored(database)
    for change, words in (
        ({"kind": "party"}, ["Loại cuộc họp không hợp lệ"]),
        ({"date": ""}, ["Thời gian họp"]),
        ({"date": "2026-02-30"}, ["Thời gian họp"]),
        ({"time": "25:61"}, ["Thời gian họp"]),
        ({"expected_minutes": "mười"}, []),
        ({"expected_minutes": "-30"}, []),
        ({"expected_minutes": "0"}, []),
    ):
        r = post(sec, url, good | change)
        refused(r, *words)
        assert r.status_code == 400, change
        assert "Họp bất thường về đê điều" in r.text  # the form is kept
        assert stored(database) == before, change
    assert post(sec, url, good).status_code == 303
    with database.session() as s:
        assert s.scalar(select(Meeting.id).where(Meeting.title == "Họp bất thường về đê điều")) is not None


def test_committee_email_refuses_a_malformed_address(client_as, world, database):
    admin = client_as("admin")
    url = f"/orgs/{world.id('X')}/email"
    assert post(admin, url, {"email": "dangUy.xuanhoa@example.vn"}).status_code == 303
    before = stored(database)
    for bad in ("dang uy@example.vn", "không-có-a-còng", "a@b", "x" * 200 + "@example.vn"):
        refused(post(admin, url, {"email": bad}), "không hợp lệ")
        assert stored(database) == before, bad
    with database.session() as s:
        assert s.get(Organisation, world.id("X")).email == "danguy.xuanhoa@example.vn"


def test_remote_list_refuses_bad_members_and_closed_meetings(sec, world, database, objects, clock):
    meeting_id = objects["meeting_id"]
    url = f"/meetings/{meeting_id}/remote"
    before = stored(database)
    for data, words in (
        ({}, ["Hãy chọn đảng viên"]),
        ({"member_id": "ba"}, []),
        ({"member_id": str(world.id("b2"))}, ["không thuộc danh sách dự họp"]),
        ({"member_id": "999999"}, ["không thuộc danh sách dự họp"]),
    ):
        refused(post(sec, url, data), *words)
        assert stored(database) == before, data
    assert post(sec, url, {"member_id": str(world.id("a2")), "reason": "Đi công tác"}).status_code == 303
    with database.session() as s:
        meeting = s.get(Meeting, meeting_id)
        change_status(s, ACTOR, meeting, MeetingStatus.CANCELLED, now=clock.now, reason="Bão lũ")
    before = stored(database)
    for data in ({"member_id": str(world.id("a3"))}, {"member_id": str(world.id("a2")), "action": "remove"}):
        refused(post(sec, url, data), "Đã hủy")
        assert stored(database) == before, data
    with database.session() as s:
        assert s.scalar(select(RemoteInvite.member_id).where(RemoteInvite.meeting_id == meeting_id)) == world.id("a2")


@pytest.fixture
def voting(database, world, objects, clock):
    """Cell A's meeting running, everyone expected but the away member present in the hall, a
    closed secret ballot and an open vote by name."""
    clock.now = MEETING_START.astimezone(dt.UTC)
    with database.session() as s:
        meeting = s.get(Meeting, objects["meeting_id"])
        change_status(s, ACTOR, meeting, MeetingStatus.OPEN, now=clock.now)
        for record in attendance.roster(s, meeting):
            if record.expected and record.member_id != world.id("a4"):
                attendance.mark(s, ACTOR, meeting, record.member_id,
                                attendance.Mark(status="present", mode="in_person"), now=clock.now)
        secret = votes.open_motion(s, ACTOR, meeting, "Đề nghị kết nạp", "secret", clock.now)
        votes.close_motion(s, ACTOR, meeting, secret, clock.now, box=votes.BallotBox(secret.id))
        named = votes.open_motion(s, ACTOR, meeting, "Thông qua kế hoạch tháng 12", "open", clock.now)
        return meeting.id, named.id, secret.id


def test_recording_a_named_vote_refuses_bad_input(voting, sec, world, database):
    meeting_id, named, secret = voting
    url = f"/meetings/{meeting_id}/votes/{named}/record"
    a1 = str(world.id("a1"))
    before = stored(database)
    for motion, data, words in (
        (named, {"member_id": a1, "choice": "maybe"}, []),
        (named, {"member_id": a1, "choice": ""}, []),
        (named, {"choice": "agree"}, ["Hãy chọn đảng viên"]),
        (named, {"member_id": str(world.id("a3")), "choice": "agree"}, ["dự bị"]),
        (named, {"member_id": str(world.id("a4")), "choice": "agree"}, ["có mặt"]),
        (named, {"member_id": str(world.id("b2")), "choice": "agree"}, []),
        (secret, {"member_id": a1, "choice": "agree"}, ["Bỏ phiếu kín"]),
    ):
        r = post(sec, f"/meetings/{meeting_id}/votes/{motion}/record", data)
        refused(r, *words)
        assert stored(database) == before, data
    assert post(sec, url, {"member_id": a1, "choice": "agree"}).status_code == 303
    before = stored(database)
    refused(post(sec, url, {"member_id": a1, "choice": "disagree"}), votes.ALREADY_VOTED)
    assert stored(database) == before
    with database.session() as s:
        assert [(v.member_id, v.choice.value) for v in s.scalars(select(OpenVote))] == [(int(a1), "agree")]


def test_removing_a_document_twice_is_refused_and_keeps_the_first_removal(sec, database, objects, clock):
    doc_id = objects["document_id"]
    url = f"/documents/{doc_id}/remove"
    assert post(sec, url).status_code == 303
    with database.session() as s:
        removed_at = s.get(MeetingDocument, doc_id).removed_at
    assert removed_at is not None
    clock.advance(hours=1)
    before = stored(database)
    refused(post(sec, url), "đã được gỡ")
    assert stored(database) == before
    refused(post(sec, "/documents/999999/remove"), "Không tìm thấy")
    assert stored(database) == before
