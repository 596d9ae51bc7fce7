"""Attendance, votes and minutes through the pages, as the secretary and members use them."""

from __future__ import annotations

import io
import re

import pytest
from docx import Document
from sqlalchemy import select

from meetings.foundation.actors import Actor
from meetings.planning.meetings import Meeting, MeetingStatus, change_status
from meetings.proceedings import minutes as mn
from tests.support.web import client_token, post


@pytest.fixture
def opened(database, world, clock):
    from tests.support.world import add_meetings

    with database.session() as s:
        add_meetings(s, world, ("A",))
    with database.session() as s:
        change_status(s, Actor.system("t"), s.get(Meeting, world.meetings["A"]), MeetingStatus.OPEN, now=clock.now)
    return world.meetings["A"]


def test_secretary_marks_the_roster_and_bad_marks_are_refused(world, client_as, opened):
    sec = client_as("sec_a")
    page = sec.get(f"/meetings/{opened}/attendance")
    assert page.status_code == 200 and "Điểm danh" in page.text and "Phạm Thị Hường" in page.text
    a2, a4 = world.id("a2"), world.id("a4")
    assert post(sec, f"/meetings/{opened}/attendance/{a2}", {"mark": "in_person", "dues": "paid_at_meeting"}).status_code == 303
    r = post(sec, f"/meetings/{opened}/attendance/{a4}", {"mark": "excused"})
    assert r.status_code == 400 and "loại lý do" in r.text
    r = post(sec, f"/meetings/{opened}/attendance/{a4}", {"mark": "excused", "reason_category": "work",
                                                         "reason_text": "Ca làm việc ở nhà máy"})
    assert r.status_code == 303
    data = sec.get(f"/meetings/{opened}/attendance.json").json()["counts"]
    assert data["present"] == 1 and data["absent_excused"] == [["Phạm Thị Hường", "Ca làm việc ở nhà máy"]]
    csv_text = sec.get(f"/meetings/{opened}/attendance.csv").content.decode("utf-8-sig")
    assert "Trần Thị Bích Ngọc,Chính thức,có,có,Có mặt trực tiếp" in csv_text
    assert "Đã đóng tại buổi họp" in csv_text


def test_members_see_counts_but_not_the_marking_page(world, client_as, opened):
    mem = client_as("mem_a")
    assert mem.get(f"/meetings/{opened}/attendance").status_code == 403
    assert mem.get(f"/meetings/{opened}/attendance.json").json()["counts"]["total"] == 4


def test_corrections_after_closing_need_a_reason(world, client_as, opened, database, clock):
    sec = client_as("sec_a")
    with database.session() as s:
        change_status(s, Actor.system("t"), s.get(Meeting, opened), MeetingStatus.CLOSED, now=clock.now)
    # Entering the roster after the meeting is fine; changing an entry then needs a reason.
    assert post(sec, f"/meetings/{opened}/attendance/{world.id('a2')}", {"mark": "in_person"}).status_code == 303
    r = post(sec, f"/meetings/{opened}/attendance/{world.id('a2')}", {"mark": "unexcused"})
    assert r.status_code == 400 and "lý do điều chỉnh" in r.text
    r = post(sec, f"/meetings/{opened}/attendance/{world.id('a2')}", {"mark": "unexcused",
                                                                      "amendment_reason": "Ghi nhầm"})
    assert r.status_code == 303
    page = sec.get(f"/meetings/{opened}/attendance").text
    assert "Các lần điều chỉnh sau cuộc họp" in page and "Ghi nhầm" in page


def test_votes_page_opens_counts_and_closes_a_motion(world, client_as, opened):
    sec = client_as("sec_a")
    for key in ("a1", "a2", "a4"):
        post(sec, f"/meetings/{opened}/attendance/{world.id(key)}", {"mark": "in_person"})
    assert post(sec, f"/meetings/{opened}/votes/new", {"title": "Thông qua nghị quyết", "kind": "open"}).status_code == 303
    page = sec.get(f"/meetings/{opened}/votes").text
    motion = int(re.search(r'id="motion-(\d+)"', page).group(1))
    r = post(sec, f"/meetings/{opened}/votes/{motion}/counts", {"agree": "5", "disagree": "0", "abstain": "0"})
    assert r.status_code == 400 and "vượt số đảng viên" in r.text
    r = post(sec, f"/meetings/{opened}/votes/{motion}/counts", {"agree": "x", "disagree": "0", "abstain": "0"})
    assert r.status_code == 400 and "số nguyên" in r.text
    assert post(sec, f"/meetings/{opened}/votes/{motion}/counts", {"agree": "2", "disagree": "1"}).status_code == 303
    assert post(sec, f"/meetings/{opened}/votes/{motion}/close").status_code == 303
    page = sec.get(f"/meetings/{opened}/votes").text
    # D = 3 official members (a1, a2, a4); 2 agree > 1.5 passes.
    assert "Tán thành <strong>2</strong>/3" in page and "THÔNG QUA" in page
    r = post(sec, f"/meetings/{opened}/votes/{motion}/counts", {"agree": "3"})
    assert r.status_code == 400 and "đã kết thúc" in r.text
    mem = client_as("mem_a")
    assert post(mem, f"/meetings/{opened}/votes/new", {"title": "X", "kind": "open"}).status_code == 403


def test_votes_page_closes_a_secret_ballot_and_voids_one_whose_box_was_lost(world, client_as, opened, database):
    from meetings.proceedings import votes

    sec = client_as("sec_a")
    for key in ("a1", "a2", "a4"):
        post(sec, f"/meetings/{opened}/attendance/{world.id(key)}", {"mark": "in_person"})
    # Nobody voted online (no room): the hall's paper count alone decides.
    post(sec, f"/meetings/{opened}/votes/new", {"title": "Bỏ phiếu kín lần 1", "kind": "secret"})
    motion = int(re.search(r'id="motion-(\d+)"', sec.get(f"/meetings/{opened}/votes").text).group(1))
    assert post(sec, f"/meetings/{opened}/votes/{motion}/counts", {"agree": "2", "disagree": "1"}).status_code == 303
    assert post(sec, f"/meetings/{opened}/votes/{motion}/close").status_code == 303
    assert "Tán thành <strong>2</strong>/3" in sec.get(f"/meetings/{opened}/votes").text

    # A ballot taken into a room's box, and the room's process gone with it.
    post(sec, f"/meetings/{opened}/votes/new", {"title": "Bỏ phiếu kín lần 2", "kind": "secret"})
    with database.session() as s:
        lost = s.scalar(select(votes.Motion).where(votes.Motion.status == votes.MotionStatus.OPEN))
        votes.accept_ballot(s, s.get(Meeting, opened), lost, votes.BallotBox(lost.id), world.id("a2"))
        lost_id = lost.id
    r = post(sec, f"/meetings/{opened}/close")
    assert r.status_code == 400 and "đang diễn ra" in r.text
    r = post(sec, f"/meetings/{opened}/votes/{lost_id}/close")
    assert r.status_code == 400 and "bị hủy và được tổ chức lại" in r.text
    assert "hòm phiếu trực tuyến (1 phiếu) bị mất" in r.text
    with database.session() as s:
        assert s.get(votes.Motion, lost_id).status == votes.MotionStatus.VOID
        again = s.scalar(select(votes.Motion).where(votes.Motion.status == votes.MotionStatus.OPEN))
        assert again.title == "Bỏ phiếu kín lần 2" and again.id != lost_id
        assert s.get(Meeting, opened).status == MeetingStatus.OPEN


def test_minutes_autosave_confirm_adopt_and_export(world, client_as, opened, app):
    sec = client_as("sec_a")
    page = sec.get(f"/meetings/{opened}/minutes")
    assert page.status_code == 200 and "Đọc lại và thông qua" in page.text
    token = client_token(sec)
    draft = {"chair_member_id": world.id("a1"), "taker_member_id": world.id("a2"), "place": "Nhà văn hóa",
             "items": [{"title": "Đánh giá tháng 11", "summary": "Hoàn thành chỉ tiêu", "opinions": [
                 {"speaker": "Phạm Thị Hường", "text": "Đồng ý"}], "conclusion": "Thống nhất"}]}
    r = sec.post(f"/meetings/{opened}/minutes/draft", json={"revision": 0, "data": draft},
                 headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["revision"] == 1
    stale = sec.post(f"/meetings/{opened}/minutes/draft", json={"revision": 0, "data": draft},
                     headers={"X-CSRF-Token": token})
    assert stale.status_code == 409 and "người khác sửa" in stale.json()["message"]
    bad = sec.post(f"/meetings/{opened}/minutes/draft", json={"revision": 1, "data": {"items": 5}},
                   headers={"X-CSRF-Token": token})
    assert bad.status_code == 400 and bad.json()["message"]
    no_token = sec.post(f"/meetings/{opened}/minutes/draft", json={"revision": 1, "data": draft})
    assert no_token.status_code == 403
    assert "Chủ trì thông qua biên bản" in sec.get(f"/meetings/{opened}/minutes").text
    r = post(sec, f"/meetings/{opened}/minutes/adopt")
    assert r.status_code == 400 and "Thư ký chưa xác nhận" in r.text
    mem = client_as("mem_a")  # Trần Thị Bích Ngọc, the minute-taker, from her own account
    assert post(mem, f"/meetings/{opened}/minutes/confirm").status_code == 303
    r = post(sec, f"/meetings/{opened}/minutes/adopt")
    assert r.status_code == 303 and r.headers["location"] == f"/meetings/{opened}/minutes/v/1"
    version = sec.get(f"/meetings/{opened}/minutes/v/1").text
    assert "BIÊN BẢN" in version and "ĐẢNG CỘNG SẢN VIỆT NAM" in version and "Đồng chí Phạm Thị Hường: Đồng ý" in version

    assert "Phiên bản 1" in mem.get(f"/meetings/{opened}/minutes").text
    assert "Sinh hoạt thường kỳ tháng 12/2026" in mem.get(f"/cells/{world.id('A')}/minutes").text
    docx = mem.get(f"/meetings/{opened}/minutes/v/1.docx")
    assert docx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "Nguyễn Văn Ấn" in "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    pdf = mem.get(f"/meetings/{opened}/minutes/v/1.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert client_as("sec_b").get(f"/meetings/{opened}/minutes/v/1.pdf").status_code == 404

    # Changing adopted minutes makes a new version, with a reason; version 1 stays as it was.
    r = sec.post(f"/meetings/{opened}/minutes/draft", json={"revision": 1, "data": {**draft, "resolution": "Bổ sung"}},
                 headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    post(mem, f"/meetings/{opened}/minutes/confirm")
    r = post(sec, f"/meetings/{opened}/minutes/adopt")
    assert r.status_code == 400 and "phải ghi lý do" in r.text
    assert post(sec, f"/meetings/{opened}/minutes/adopt", {"reason": "Bổ sung nghị quyết"}).status_code == 303
    v1 = sec.get(f"/meetings/{opened}/minutes/v/1").text
    assert "Bổ sung" not in v1.split("Phiên bản 1")[0] and "đã có" in v1
    with app.state.db.session() as s:
        assert [v.version for v in mn.versions(s, opened)] == [1, 2]
        assert all(mn.verify(v) for v in mn.versions(s, opened))


def test_member_sees_own_attendance_history(world, client_as, database):
    from tests.support.world import hold_meetings

    with database.session() as s:
        hold_meetings(s, world, cells=("A",))
    away = client_as("away_a")
    page = away.get(f"/members/{world.id('a4')}/attendance")
    assert page.status_code == 200 and "Có mặt trực tiếp" in page.text
    assert away.get(f"/members/{world.id('a2')}/attendance").status_code == 403
