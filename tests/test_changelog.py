"""The change log as a secretary or an auditor reads it: Vietnamese sentences that link to the
member and the meeting, pages, filters by kind of change and by member, and the integrity
check that the page runs itself."""

from __future__ import annotations

import re

from sqlalchemy import select

from app import changelog
from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import MeetingKind, MeetingStatus, change_status, create_meeting
from meetings.proceedings import attendance


def _held_meeting(database, world, clock) -> int:  # type: ignore[no-untyped-def]
    with database.session() as s:
        actor = Actor(world.accounts["sec_a"], "Nguyễn Văn Ấn")
        meeting = create_meeting(s, actor, s.get(Organisation, world.id("A")), kind=MeetingKind.REGULAR,
                                 starts_at=clock.now, title="Sinh hoạt thường kỳ tháng 11/2026")
        change_status(s, actor, meeting, MeetingStatus.OPEN, now=clock.now)
        attendance.mark(s, actor, meeting, world.id("a2"), attendance.Mark(status="present", mode="in_person"),
                        now=clock.now)
        return meeting.id


def _rows(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m) for m in re.findall(r'<span class="row-title log-sentence">(.*?)</span>', html)]


def test_entries_read_as_sentences_with_links(database, world, client_as, clock):
    meeting_id = _held_meeting(database, world, clock)
    page = client_as("sec_a").get(f"/cells/{world.id('A')}/log").text
    a2 = world.id("a2")
    assert (f'Nguyễn Văn Ấn điểm danh <a href="/members/{a2}">Trần Thị Bích Ngọc</a>: có mặt (trực tiếp) — '
            f'<a href="/meetings/{meeting_id}/attendance">Sinh hoạt thường kỳ tháng 11/2026 (27/11/2026)</a>.'
            in page)
    assert f'Nguyễn Văn Ấn bắt đầu <a href="/meetings/{meeting_id}">' in page
    a4 = world.id("a4")
    assert f'test thêm giai đoạn “Đi làm ăn xa” của <a href="/members/{a4}">Phạm Thị Hường</a>' in page
    # No codes of the audit log in what people read.
    for code in ("attendance.mark", "AttendanceRecord", "meeting.open", "period.create", "MemberPeriod", " #"):
        assert code not in "".join(_rows(page)), code


def test_pages_and_filters(database, world, client_as, clock, monkeypatch):
    _held_meeting(database, world, clock)
    monkeypatch.setattr(changelog, "PAGE_SIZE", 4)
    sec = client_as("sec_a")
    base = f"/cells/{world.id('A')}/log"
    with database.session() as s:
        total = len(s.scalars(select(AuditEntry.id).where(AuditEntry.organisation_id == world.id("A"))).all())
    first = sec.get(base).text
    assert f"({total} mục)" in first and f"Trang 1/{-(-total // 4)}" in first
    assert len(_rows(first)) == 4 and 'rel="next"' in first and 'rel="prev"' not in first
    second = sec.get(f"{base}?page=2").text
    assert len(_rows(second)) == 4 and not set(_rows(first)) & set(_rows(second)) and 'rel="prev"' in second

    # Kind: only attendance, dues and absence requests.
    only = sec.get(f"{base}?kind=attendance").text
    assert "(1 mục)" in only and _rows(only)[0].startswith("Nguyễn Văn Ấn điểm danh Trần Thị Bích Ngọc")
    # Member: every change about Phạm Thị Hường (her record, her away period, her account),
    # nobody else's.
    monkeypatch.setattr(changelog, "PAGE_SIZE", 50)
    hers = _rows(sec.get(f"{base}?member={world.id('a4')}").text)
    assert len(hers) == 3 and all("Phạm Thị Hường" in row for row in hers)
    assert any("tạo tài khoản “away_a” cho Phạm Thị Hường" in row for row in hers)
    assert any("thêm đảng viên Phạm Thị Hường" in row for row in hers)
    assert any("giai đoạn “Đi làm ăn xa” của Phạm Thị Hường" in row for row in hers)
    ngoc = _rows(sec.get(f"{base}?member={world.id('a2')}&kind=attendance").text)
    assert len(ngoc) == 1 and "Trần Thị Bích Ngọc" in ngoc[0]
    # A member of another cell is no filter here: the list stays whole.
    assert f"({total} mục)" in sec.get(f"{base}?member={world.id('b2')}").text


def test_integrity_check_runs_by_itself_and_compares_an_anchor(database, world, client_as):
    sec = client_as("sec_a")
    base = f"/cells/{world.id('A')}/log"
    page = sec.get(base).text
    # The page asks for the check by itself (static/changelog.js); nothing tells the user to
    # run a command.
    assert 'data-check="?verify=1"' in page
    assert re.search(r'<script type="module" src="/static/v/[0-9a-f]+/changelog\.js">', page)
    assert "python -m app" not in page
    checked = sec.get(f"{base}?verify=1").text
    assert "✓ Chuỗi mã băm toàn vẹn:" in checked
    head = re.search(r'<code class="hash">(\d+):([0-9a-f]{64})</code>', checked)
    assert head
    seq, digest = head.groups()
    kept = sec.get(f"{base}?verify=1&anchor={seq}:{digest}").text
    assert f"mục #{seq} vẫn khớp mã đã ghi lại" in kept
    wrong = sec.get(f"{base}?verify=1&anchor={seq}:{'0' * 64}").text
    assert "✗ Nhật ký không toàn vẹn." in wrong and "chuỗi đã bị viết lại" in wrong
    garbled = sec.get(f"{base}?verify=1&anchor=abc").text
    assert "Mã đối chiếu phải có dạng số mục:mã băm" in garbled


def test_member_sees_no_change_log(world, client_as):
    assert client_as("mem_a").get(f"/cells/{world.id('A')}/log").status_code == 403
