"""Two members in the meeting room in headless Chromium: video, chat, hands, reload.

Marked ``netns`` (real WebRTC media): scripts/test runs it inside a loopback-only namespace.
"""

from __future__ import annotations

import pytest

from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS
from tests.browser.test_screenshots import ARTIFACTS
from tests.support.world import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

VIDEO_PLAYING = """(id) => {
  const v = document.querySelector(`.tile[data-id="${id}"] video`);
  return !!v && v.videoWidth > 0 && !v.paused;
}"""


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)
        yield b
        await b.close()


async def open_room(browser, server, meeting_id, username, init_script=None):  # type: ignore[no-untyped-def]
    """Log in as ``username`` on a phone-sized page and join the room with camera and
    microphone; ``init_script`` runs in the page before its own scripts (instrumentation)."""
    context = await browser.new_context(viewport={"width": 390, "height": 800}, locale="vi-VN")
    if init_script:
        await context.add_init_script(init_script)
    page = await context.new_page()
    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}/")
    await page.goto(f"{server}/meetings/{meeting_id}/room")
    await page.click("#join-video")
    await page.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)
    return page


async def test_two_members_see_each_other_chat_raise_hands_and_rejoin(browser, server, room_world):
    chair = await open_room(browser, server, room_world.meeting_id, "sec_a")
    away = await open_room(browser, server, room_world.meeting_id, "away_a")
    chair_id = await chair.evaluate("window.chiboRoom.me")
    away_id = await away.evaluate("window.chiboRoom.me")
    assert (chair_id, away_id) == (f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}")

    await chair.wait_for_function(VIDEO_PLAYING, arg=away_id, timeout=20000)
    await away.wait_for_function(VIDEO_PLAYING, arg=chair_id, timeout=20000)
    assert "Đã kết nối" in await away.inner_text("#conn")

    # Chat, with markup that must stay text.
    await away.click("#btn-chat")
    await away.fill("#chat-input", "Em xin phép phát biểu <b>ý kiến</b>")
    await away.click("#chat-form button[type=submit]")
    await chair.click("#btn-chat")
    item = chair.locator("#chat-list .chat-text", has_text="Em xin phép phát biểu")
    await item.wait_for(timeout=10000)
    assert await item.inner_text() == "Em xin phép phát biểu <b>ý kiến</b>"
    assert await chair.locator("#chat-list b").count() == 0

    # A raised hand shows in the secretary's queue.
    await away.click("#panel-close")
    await away.click("#btn-hand")
    await chair.click("[data-tab=hands]")
    row = chair.locator("#hands-list .hand-row", has_text="Phạm Thị Hường")
    await row.wait_for(timeout=10000)
    assert await row.locator("button", has_text="Cho phát biểu").count() == 1
    await chair.screenshot(path=str(ARTIFACTS / "room-chair.png"), full_page=False)
    await away.screenshot(path=str(ARTIFACTS / "room-away.png"), full_page=False)

    # The live counts: total, D and the votes a resolution needs (A: a1, a2, a4 official, a3 probationary).
    await chair.click("[data-tab=counts]")
    await chair.locator("#counts-list dt", has_text="Mẫu số D").wait_for(timeout=10000)
    counts = await chair.inner_text("#counts-list")
    assert "Tổng số\n4" in counts and "Mẫu số D\n3" in counts and "≥ 2" in counts

    # Reload: the same participant comes back by itself (no second tap), once, and video
    # flows again.
    await away.reload()
    await away.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)
    assert await away.evaluate("window.chiboRoom.me") == away_id
    await chair.wait_for_function(VIDEO_PLAYING, arg=away_id, timeout=20000)
    await away.wait_for_function(VIDEO_PLAYING, arg=chair_id, timeout=20000)
    assert await chair.locator(f'.tile[data-id="{away_id}"]').count() == 1
    await chair.click("[data-tab=people]")
    assert await chair.locator("#people-list .person", has_text="Phạm Thị Hường").count() == 1
