"""The whole path of a meeting on the demo data, in Chromium with fake media (issue 13's
acceptance): the secretary starts the meeting on its planned day, an away member joins, the
room's counts show both, an open vote and a secret ballot are decided against D, the meeting
ends, the roster and its CSV show the member online (confirmed in one action, no reason), the
named minute-taker confirms from her own account and the chair adopts; then the minutes'
title and file names, the minutes list, the compliance grid, the member's yearly record and
the auditor's page all show 07/12/2026, December.

Marked ``netns`` (real WebRTC media): scripts/test runs it inside a loopback-only namespace.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from sqlalchemy import select

from app.config import Settings
from app.demo import DEMO_PASSWORD, load_demo
from app.factory import create_app
from meetings.foundation.base import LOCAL_TZ, utcnow
from meetings.organisation.accounts import Account
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting, MeetingKind
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS
from tests.browser.test_screenshots import ARTIFACTS
from tests.support.room_fixtures import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.netns]
TODAY = dt.date(2026, 12, 7)


class ShiftedClock:
    """The app's clock: 19:25 on 7 December 2026 when the test starts, then real time."""

    def __init__(self) -> None:
        self.origin = utcnow()
        self.start = dt.datetime(2026, 12, 7, 19, 25, tzinfo=LOCAL_TZ).astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.start + (utcnow() - self.origin)


@asynccontextmanager
async def demo_server(database, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path / "var"), SECRET_KEY="one-truth-secret-0123456789",
                                 LOG_REQUESTS=False, LOG_LEVEL="WARNING", NOTICE_INTERVAL=0, PUBLIC_URL=base)
    app = create_app(settings, database=database, clock=ShiftedClock())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield base
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)
        yield b
        await b.close()


async def logged_in(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN",
                                        timezone_id="Asia/Ho_Chi_Minh", accept_downloads=True)
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    return page


async def join_room(page, base: str, meeting_id: int) -> None:  # type: ignore[no-untyped-def]
    if not page.url.endswith(f"/meetings/{meeting_id}/room"):
        await page.goto(f"{base}/meetings/{meeting_id}/room")
    await page.click("#join-video")
    await page.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)


async def counts_show(page, *pairs: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    script = """(pairs) => { const t = document.querySelector('#counts-list')?.innerText || '';
                             return pairs.every(([k, v]) => t.includes(k + '\\n' + v)); }"""
    await page.wait_for_function(script, arg=[list(p) for p in pairs], timeout=20000)


async def room_vote(chair, away, title: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    await chair.fill("#vote-form input[name=title]", title)
    await chair.select_option("#vote-form select[name=kind]", kind)
    await chair.click("#vote-form button[type=submit]")
    await away.wait_for_selector("#vote-buttons [data-choice=agree]:visible", timeout=10000)
    await away.click("#vote-buttons [data-choice=agree]")
    await away.wait_for_function("() => document.querySelector('#vote-status').innerText.includes('Bạn đã biểu quyết')")


async def hall_count(page, base: str, meeting_id: int, agree: int, disagree: int) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{base}/meetings/{meeting_id}/votes")
    form = page.locator("form[action$='/counts']").last
    await form.locator("input[name=agree]").fill(str(agree))
    await form.locator("input[name=disagree]").fill(str(disagree))
    await form.locator("button[type=submit]").click()
    await page.wait_for_load_state()
    assert "Đã lưu." in await page.inner_text("body")


async def close_in_room(chair, away) -> str:  # type: ignore[no-untyped-def]
    await chair.click("#vote-close")
    script = "() => document.querySelector('#vote-status').innerText.includes('Kết quả:')"
    await away.wait_for_function(script, timeout=10000)
    return str(await chair.inner_text("#vote-status"))


async def test_the_whole_path_tells_one_truth(browser, sqlite_database, tmp_path):
    with sqlite_database.session() as s:
        load_demo(s, TODAY)
        cell = s.scalar(select(Organisation).where(Organisation.code == "QT-CL-ANMY"))
        meeting = s.scalar(select(Meeting).where(Meeting.cell_id == cell.id, Meeting.kind == MeetingKind.REGULAR,
                                                 Meeting.starts_at >= dt.datetime(2026, 12, 1, tzinfo=LOCAL_TZ)))
        assert meeting.local_date == TODAY and meeting.occurrence_on == dt.date(2026, 12, 5)
        anmy = list(s.scalars(select(Member).where(Member.home_cell_id == cell.id).order_by(Member.id)))
        people = {u: s.scalar(select(Account.member_id).where(Account.username == u))
                  for u in ("bithu", "dangvien", "divang")}
        cell_id, commune_id, meeting_id = cell.id, cell.parent_id, meeting.id
    # In the hall: the secretary, four other members and two away members who came home.
    hall = [people["bithu"], *(m.id for m in anmy[11:15]), anmy[2].id, anmy[3].id]

    async with demo_server(sqlite_database, tmp_path) as base:
        chair = await logged_in(browser, base, "bithu")
        await chair.goto(f"{base}/meetings/{meeting_id}/room")
        await chair.click("button:has-text('Bắt đầu cuộc họp')")  # its planned day: no question asked
        await chair.wait_for_url(f"{base}/meetings/{meeting_id}/room")
        assert "Cuộc họp đã bắt đầu" in await chair.inner_text("body")
        await join_room(chair, base, meeting_id)
        away = await logged_in(browser, base, "divang")
        await join_room(away, base, meeting_id)
        await chair.click("#btn-people")
        await chair.click("[data-tab=counts]")
        await counts_show(chair, ("Có mặt", "2"), ("Trực tiếp / trực tuyến", "0/2"), ("Mẫu số D", "15"),
                          ("Cần tán thành", "≥ 8"), ("Có quyền biểu quyết, có mặt", "2"))
        await chair.screenshot(path=str(ARTIFACTS / "truth-room-counts.png"))

        # The hall's people are marked on the roster (a new tab, the room stays connected).
        roster = await chair.context.new_page()
        for member_id in hall:
            await roster.goto(f"{base}/meetings/{meeting_id}/attendance#m{member_id}")
            await roster.click(f"#m{member_id} form.quick-marks button[value=in_person]")
            await roster.wait_for_load_state()
        await counts_show(chair, ("Có mặt", "8"), ("Trực tiếp / trực tuyến", "7/1"), ("Mẫu số D", "15"))

        # An open vote: 7 hands in the hall and the away member online → 8 of D = 15: passes.
        await room_vote(chair, away, "Thông qua nghị quyết tháng 12/2026", "open")
        await hall_count(roster, base, meeting_id, 7, 0)
        result = await close_in_room(chair, away)
        assert "tán thành 8/15" in result and "THÔNG QUA (cần ≥ 8)" in result
        # A secret ballot: 5 of the 7 ballots in the hall agree, and the away member → 6 of 15: fails.
        await room_vote(chair, away, "Giới thiệu đảng viên dự bị", "secret")
        await hall_count(roster, base, meeting_id, 5, 2)
        result = await close_in_room(chair, away)
        assert "tán thành 6/15" in result and "KHÔNG THÔNG QUA (cần ≥ 8)" in result

        await chair.click("button:has-text('Kết thúc cuộc họp')")
        await chair.wait_for_url(f"{base}/meetings/{meeting_id}/room")
        await away.wait_for_selector("#ended:visible", timeout=15000)

        # The roster: the away member online, awaiting confirmation; confirmed in one action.
        await roster.goto(f"{base}/meetings/{meeting_id}/attendance")
        row = roster.locator(f"#m{people['divang']}")
        assert "Có mặt trực tuyến" in await row.inner_text() and "chờ xác nhận" in await row.inner_text()
        await roster.click("#confirm-online button[type=submit]")
        await roster.wait_for_load_state()
        body = await roster.inner_text("body")
        assert "Đã xác nhận có mặt trực tuyến" in body and "Lý do điều chỉnh" not in body
        assert "chờ xác nhận" not in await roster.locator(f"#m{people['divang']}").inner_text()
        assert "Các lần điều chỉnh sau cuộc họp" not in body
        exported = await roster.request.get(f"{base}/meetings/{meeting_id}/attendance.csv")
        rows = {r[0]: r for r in csv.reader(io.StringIO((await exported.text()).lstrip("\ufeff")))}
        divang_name = anmy[1].full_name
        assert rows[divang_name][4] == "Có mặt trực tuyến"
        assert 'filename="diem-danh-2026-12-07-' in exported.headers["content-disposition"]

        # The minutes: the secretary names the chair and the minute-taker and writes the text.
        await roster.goto(f"{base}/meetings/{meeting_id}/minutes")
        await roster.select_option("select[name=chair_member_id]", str(people["bithu"]))
        await roster.select_option("select[name=taker_member_id]", str(people["dangvien"]))
        await roster.fill("textarea[name=resolution]", "Chi bộ thống nhất nghị quyết tháng 12/2026.")
        await roster.wait_for_function("() => document.querySelector('#autosave').dataset.state === 'saved'",
                                       timeout=10000)
        await roster.reload()
        assert "Thư ký xác nhận</button>" not in await roster.content()  # not the secretary's button
        taker = await logged_in(browser, base, "dangvien")
        await taker.goto(f"{base}/meetings/{meeting_id}/minutes")
        await taker.click("button:has-text('Thư ký xác nhận')")
        await taker.wait_for_load_state()
        assert "Thư ký đã xác nhận biên bản" in await taker.inner_text("body")
        await roster.reload()
        await roster.click("button:has-text('Chủ trì thông qua biên bản')")
        await roster.wait_for_url(f"{base}/meetings/{meeting_id}/minutes/v/1")
        version = await roster.inner_text("body")
        assert "THÁNG 12 NĂM 2026" in version and "ngày 07 tháng 12 năm 2026" in version
        assert "có thể đã bị sửa" not in version
        await roster.screenshot(path=str(ARTIFACTS / "truth-minutes.png"), full_page=True)
        for ext in ("pdf", "docx"):
            download = await roster.request.get(f"{base}/meetings/{meeting_id}/minutes/v/1.{ext}")
            assert f'filename="bien-ban-2026-12-07-v1.{ext}"' in download.headers["content-disposition"]
        await roster.goto(f"{base}/cells/{cell_id}/minutes")
        listing = await roster.inner_text("body")
        assert "Sinh hoạt thường kỳ tháng 12/2026" in listing and "07/12/2026 · thông qua 07/12/2026" in listing
        await roster.goto(f"{base}/cells/{cell_id}/compliance?year=2026")
        december = await roster.locator("li.row:has-text('Tháng 12')").last.inner_text()
        assert "Đã họp" in december and "họp ngày 07/12/2026 · dự kiến 05/12/2026" in december

        record = await away.context.new_page()
        await record.goto(f"{base}/members/{people['divang']}/record?year=2026")
        month = await record.inner_text("#thang-12")
        assert "07/12" in month and "Sinh hoạt thường kỳ tháng 12/2026" in month and "Có mặt trực tuyến" in month

        auditor = await logged_in(browser, base, "kiemtra")
        await auditor.goto(f"{base}/orgs/{commune_id}/audit?year=2026")
        assert "Chi bộ thôn An Mỹ, tháng 12: Đúng hạn" in await auditor.content()
        await auditor.goto(f"{base}/cells/{cell_id}/audit?year=2026")
        december = await auditor.locator("li.row:has-text('Tháng 12')").first.inner_text()
        assert "Đúng hạn" in december and "họp ngày 07/12" in december and "dự kiến 05/12" in december
        await auditor.screenshot(path=str(ARTIFACTS / "truth-audit-cell.png"), full_page=True)
        await auditor.goto(f"{base}/meetings/{meeting_id}/minutes/v/1")
        assert "THÁNG 12 NĂM 2026" in await auditor.inner_text("body")
