"""The minutes editor as the secretary uses it, in Chromium on the demo (issue 16's journeys):

* autosave: what is typed is saved by itself ("Đã lưu lúc …") and is there after a reload;
* the connection drops while typing: the editor says the text is kept on this machine, and
  the next time the page is opened the unsaved copy is restored and saved;
* two editors at once: the second save is told of the conflict, and neither text is lost.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.demo import DEMO_PASSWORD
from meetings.foundation.actors import Actor
from meetings.planning import dates
from meetings.planning.meetings import Meeting
from meetings.proceedings import minutes as mn

SAVED = "() => document.querySelector('#autosave').dataset.state === '{}'"


@pytest.fixture
def editor(demo, sqlite_database, clock, chromium):  # type: ignore[no-untyped-def]
    """The demo's meeting of today, started; a function logging the secretary in a new context
    and opening its minutes editor."""
    base, ids = demo
    with sqlite_database.session() as s:
        dates.start_meeting(s, Actor.system("test"), s.get(Meeting, ids["meeting"]), now=clock.now)
        s.commit()
    url = f"{base}/meetings/{ids['meeting']}/minutes"
    contexts = []

    def open_editor(context=None):  # type: ignore[no-untyped-def]
        if context is None:
            context = chromium.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            contexts.append(context)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "bithu")
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
        else:
            page = context.new_page()
        page.goto(url)
        return page

    yield open_editor, ids["meeting"]
    for context in contexts:
        context.close()


def _stored_resolution(sqlite_database, meeting_id: int) -> str | None:  # type: ignore[no-untyped-def]
    with sqlite_database.session() as s:
        draft = s.scalar(select(mn.Minutes).where(mn.Minutes.meeting_id == meeting_id))
        return draft.resolution if draft else None


def test_autosave_keeps_the_text_across_a_reload(editor, sqlite_database):
    open_editor, meeting_id = editor
    page = open_editor()
    page.fill("textarea[name=resolution]", "Chi bộ thống nhất nghị quyết tháng 11/2026.")
    page.wait_for_function(SAVED.format("saved"), timeout=10000)
    assert page.inner_text("#autosave").startswith("Đã lưu lúc")
    page.reload()
    assert page.input_value("textarea[name=resolution]") == "Chi bộ thống nhất nghị quyết tháng 11/2026."
    assert _stored_resolution(sqlite_database, meeting_id) == "Chi bộ thống nhất nghị quyết tháng 11/2026."


def test_offline_typing_is_restored_when_the_page_is_opened_again(editor, sqlite_database):
    open_editor, meeting_id = editor
    page = open_editor()
    context = page.context
    context.set_offline(True)
    page.fill("textarea[name=other]", "Ghi khi mất mạng: đồng chí Lan xin góp ý sau.")
    page.wait_for_function(SAVED.format("offline"), timeout=10000)
    assert "bản nháp được giữ trên máy này" in page.inner_text("#autosave")
    page.close()  # the tab is closed before the connection comes back
    assert not _stored_resolution(sqlite_database, meeting_id)
    with sqlite_database.session() as s:
        draft = s.scalar(select(mn.Minutes).where(mn.Minutes.meeting_id == meeting_id))
        assert draft is None or not draft.other

    context.set_offline(False)
    again = open_editor(context)
    assert again.input_value("textarea[name=other]") == "Ghi khi mất mạng: đồng chí Lan xin góp ý sau."
    assert "Đã khôi phục bản nháp chưa lưu" in again.inner_text("#autosave")
    again.wait_for_function(SAVED.format("saved"), timeout=10000)
    again.reload()
    assert again.input_value("textarea[name=other]") == "Ghi khi mất mạng: đồng chí Lan xin góp ý sau."


def test_a_second_editor_is_told_of_the_conflict_and_nothing_is_lost(editor, sqlite_database):
    open_editor, meeting_id = editor
    first, second = open_editor(), open_editor()
    first.fill("textarea[name=resolution]", "Bản của máy thứ nhất.")
    first.wait_for_function(SAVED.format("saved"), timeout=10000)
    second.fill("textarea[name=guests]", "Bản của máy thứ hai: đồng chí Bí thư Đảng ủy xã.")
    second.wait_for_function(SAVED.format("conflict"), timeout=10000)
    assert "tải lại" in second.inner_text("#autosave").lower()
    # The first editor's text is kept on the server, the second's is still on its screen.
    assert _stored_resolution(sqlite_database, meeting_id) == "Bản của máy thứ nhất."
    assert second.input_value("textarea[name=guests]") == "Bản của máy thứ hai: đồng chí Bí thư Đảng ủy xã."
    # Reloading as told: the server's text is shown and the copy typed here is offered, not dropped.
    second.reload()
    assert second.input_value("textarea[name=resolution]") == "Bản của máy thứ nhất."
    offered = second.locator("#stale-copy")
    assert "Bản của máy thứ hai: đồng chí Bí thư Đảng ủy xã." in offered.inner_text()
    offered.get_by_role("button", name="Dùng bản nháp này").click()
    assert second.input_value("textarea[name=guests]") == "Bản của máy thứ hai: đồng chí Bí thư Đảng ủy xã."
    second.wait_for_function(SAVED.format("saved"), timeout=10000)
    with sqlite_database.session() as s:
        draft = s.scalar(select(mn.Minutes).where(mn.Minutes.meeting_id == meeting_id))
        assert draft.guests == "Bản của máy thứ hai: đồng chí Bí thư Đảng ủy xã."
        assert draft.resolution == "Bản của máy thứ nhất."
