"""Finding 12.7 in a real browser: under the strict Content-Security-Policy the pages and the
meeting room still work, and Chromium reports no violation.

What used to be inline (a confirmation before deleting, the chair's "end the floor" button,
the minutes editor's form) now lives in /static scripts; this drives each of them.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from meetings.foundation.actors import Actor
from meetings.organisation import members
from meetings.organisation.members import MemberPeriod, PeriodInput, PeriodKind
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS
from tests.support.world import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

#: Collects every CSP violation the page reports (init scripts are not subject to the CSP).
WATCH = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)
        yield b
        await b.close()


async def test_pages_and_room_work_under_the_policy(browser, server, room_world, sqlite_database):
    world, meeting = room_world.world, room_world.meeting_id
    with sqlite_database.session() as s:
        period = members.add_period(s, Actor.system("test"), s.get(members.Member, world.id("a2")),
                                    PeriodInput(kind=PeriodKind.AWAY, start_on=dt.date(2026, 1, 1), place="Huế")).id
    context = await browser.new_context(viewport={"width": 390, "height": 800}, locale="vi-VN")
    await context.add_init_script(WATCH)
    page = await context.new_page()
    console = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", "sec_a")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}/")

    async def no_violations(where: str) -> None:
        assert await page.evaluate("window.__csp") == [], where
        assert console == [], where

    for url in ("/", f"/cells/{world.id('A')}", f"/meetings/{meeting}", f"/meetings/{meeting}/votes",
                f"/cells/{world.id('A')}/audit"):
        await page.goto(server + url)
        await no_violations(url)

    # A confirmation before deleting, from /static/page.js: dismissed, nothing is deleted.
    await page.goto(f"{server}/periods/{period}/edit")
    asked = []

    async def dismiss(dialog):  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await page.click("form.danger-zone button[type=submit]")
    await page.wait_for_timeout(300)
    assert asked and "Xóa giai đoạn này?" in asked[0]
    assert page.url.endswith(f"/periods/{period}/edit")
    with sqlite_database.session() as s:
        assert s.get(MemberPeriod, period) is not None
    await no_violations("period form")

    # The minutes editor renders its draft from the JSON block and autosaves.
    await page.goto(f"{server}/meetings/{meeting}/minutes")
    await page.select_option("[name=chair_member_id]", label="Nguyễn Văn Ấn")
    await page.locator("#autosave", has_text="Đã lưu").wait_for(timeout=10000)
    await no_violations("minutes editor")

    # The room: join, take the floor, and end it with the button that used to be inline.
    await page.goto(f"{server}/meetings/{meeting}/room")
    await page.click("#join-audio")
    await page.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)
    me = await page.evaluate("window.chiboRoom.me")
    await page.evaluate(f"window.chiboRoom.send({{type: 'give_floor', participant: '{me}'}})")
    await page.locator("#floor-end").wait_for(state="visible", timeout=10000)
    await page.click("#floor-end")
    await page.wait_for_function("() => window.chiboRoom.floor === null", timeout=10000)
    await no_violations("room")
    await context.close()
