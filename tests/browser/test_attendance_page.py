"""The attendance page in Chromium on the demo (issue 16's journeys): the secretary marks a
member present with one click, the row shows the mark and the counts above change with it."""

from __future__ import annotations

from app.demo import DEMO_PASSWORD
from meetings.foundation.actors import Actor
from meetings.planning import dates
from meetings.planning.meetings import Meeting


def _count(page, label: str) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#counts div", has=page.locator("dt", has_text=label)).locator("dd").first.inner_text()


def test_the_secretary_marks_a_member_and_the_counts_follow(demo, sqlite_database, clock, chromium):
    base, ids = demo
    with sqlite_database.session() as s:
        dates.start_meeting(s, Actor.system("test"), s.get(Meeting, ids["meeting"]), now=clock.now)
        s.commit()
    context = chromium.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "bithu")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/meetings/{ids['meeting']}/attendance")

    present, in_person, unmarked = _count(page, "Có mặt"), _count(page, "Trực tiếp / trực tuyến"), \
        _count(page, "Chưa điểm danh")
    row = page.locator("li.attendance-row", has=page.locator(".row-side", has_text="Chưa điểm danh")).first
    row_id = row.get_attribute("id")
    name = row.locator(".row-title").inner_text()
    row.get_by_role("button", name="Có mặt", exact=True).click()
    page.wait_for_load_state()

    marked = page.locator(f"#{row_id}")
    assert marked.locator(".row-title").inner_text() == name
    assert marked.locator(".row-side").inner_text().strip() == "Có mặt trực tiếp"
    assert "chosen" in (marked.get_by_role("button", name="Có mặt", exact=True).get_attribute("class") or "")
    assert int(_count(page, "Có mặt")) == int(present) + 1
    assert int(_count(page, "Chưa điểm danh")) == int(unmarked) - 1
    before, online = (int(n) for n in in_person.split("/"))
    assert _count(page, "Trực tiếp / trực tuyến") == f"{before + 1}/{online}"
    context.close()
