"""The room on a phone and on a desktop with five participants (fake camera and microphone):
the floor holder large and still in sight with the chat open, audio-only members as name tiles
that show when they speak, keyboard use, axe-core over the room, the automatic rejoin after a
reload, a closed vote that gets out of the way, a removed member with no way back in, and the
end of the meeting leading the secretary to the roster and the minutes. Before all that, a
member waiting for the meeting to start sees a calm waiting state, not a reconnection error.

Marked ``netns`` (real WebRTC media): scripts/test runs it inside a loopback-only namespace.
"""

from __future__ import annotations

import asyncio

import pytest

from meetings.foundation.actors import Actor
from meetings.foundation.base import utcnow
from meetings.organisation import accounts
from meetings.organisation.accounts import Role
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, RemoteInvite
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS
from tests.browser.axe import audit_async
from tests.browser.test_screenshots import ARTIFACTS
from tests.support.world import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

PLAYING = """(id) => {
  const v = document.querySelector(`.tile[data-id="${id}"] video`);
  return !!v && v.videoWidth > 0 && !v.paused;
}"""
BOX = """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
  return { x: r.x, y: r.y, width: r.width, height: r.height, bottom: r.bottom, right: r.right }; }"""


@pytest.fixture
def five(sqlite_database, room_world):  # type: ignore[no-untyped-def]
    """Mem_a and the probationary a3 (a new account) invited to join online; a second,
    not yet started meeting of the cell."""
    w = room_world.world
    with sqlite_database.session() as s:
        actor = Actor.system("test")
        a3 = s.get(Member, w.id("a3"))
        account = accounts.create_account(s, actor, username="prob_a", password=PASSWORD,
                                          display_name=a3.full_name, member=a3, must_change_password=False)
        accounts.grant_role(s, actor, account, Role.MEMBER, s.get(Organisation, w.id("A")))
        for key in ("a2", "a3"):
            s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=w.id(key)))
        later = mt.create_meeting(s, actor, s.get(Organisation, w.id("A")), kind=MeetingKind.EXTRAORDINARY,
                                  starts_at=utcnow(), remote_open=True)
        return later.id


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)
        yield b
        await b.close()


async def login(browser, server, username, viewport):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept("Làm việc riêng trong giờ họp"))
    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}/")
    return page


async def join(page, server, meeting_id, *, video=True, query=""):  # type: ignore[no-untyped-def]
    await page.goto(f"{server}/meetings/{meeting_id}/room{query}")
    await page.click("#join-video" if video else "#join-audio")
    await page.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)
    return await page.evaluate("window.chiboRoom.me")


async def test_five_in_the_room_on_phones_and_desktops(browser, server, room_world, five):
    shots = ARTIFACTS
    shots.mkdir(parents=True, exist_ok=True)

    # Waiting for a meeting that has not started: a neutral state, even as the page retries.
    away = await login(browser, server, "away_a", PHONE)
    await away.goto(f"{server}/meetings/{five}/room")
    await away.click("#join-video")
    await away.locator("#waiting").wait_for(timeout=10000)
    await away.wait_for_timeout(500)
    assert await away.get_attribute("#conn", "data-state") == "waiting"
    assert await away.inner_text("#conn-text") == "Chờ bí thư bắt đầu cuộc họp"
    assert "Đang kết nối lại" not in await away.inner_text("#room")
    await away.screenshot(path=str(shots / "room-waiting-phone.png"))
    await away.evaluate("window.chiboRoom.leave()")

    chair, hall, member, prob = await asyncio.gather(
        login(browser, server, "sec_a", DESKTOP), login(browser, server, "sec_a", DESKTOP),
        login(browser, server, "mem_a", PHONE), login(browser, server, "prob_a", PHONE))
    meeting = room_world.meeting_id
    ids = {
        "chair": await join(chair, server, meeting),
        "hall": await join(hall, server, meeting, query="?device=hall"),
        "away": await join(away, server, meeting),
        "member": await join(member, server, meeting),
        "prob": await join(prob, server, meeting, video=False),
    }
    assert len(set(ids.values())) == 5
    # Two cameras are enough to see who is large: the secretary and the member turn theirs off
    # (they still receive video, unlike "Chỉ âm thanh"), which keeps this 2-core machine able.
    for page in (chair, member):
        await page.click("#btn-cam")
        await page.wait_for_function("() => !window.chiboRoom.media.videoTrack")
    for page in (chair, member):
        await page.wait_for_function("() => window.chiboRoom.participants.size === 5", timeout=20000)
    for other in ("hall", "away"):
        await member.wait_for_function(PLAYING, arg=ids[other], timeout=25000)

    # The away member raises a hand; the secretary gives the floor from the hands list.
    await away.click("#btn-hand")
    await chair.click("#btn-people")
    await chair.click("[data-tab=hands]")
    await chair.get_by_role("button", name="Cho Phạm Thị Hường phát biểu").click()
    await member.wait_for_function(f"() => !!document.querySelector('#speaker .tile[data-id=\"{ids['away']}\"]')",
                                   timeout=10000)
    await member.wait_for_function(PLAYING, arg=ids["away"], timeout=20000)
    assert "Phạm Thị Hường" in await member.inner_text("#floor")

    # Phone: the floor holder fills the width; the other three are in the strip; one's own
    # picture is small in the corner.
    speaker = await member.evaluate(BOX, f'#speaker .tile[data-id="{ids["away"]}"] video')
    assert speaker["width"] >= 0.9 * PHONE["width"] and speaker["height"] >= 250
    assert await member.locator("#strip .tile").count() == 3
    assert await member.locator('#self-view .tile[data-id="self"]').count() == 1
    await member.screenshot(path=str(shots / "room-phone-speaker.png"))

    # With the chat open the speaker is still on screen, whole, and not covered by the sheet.
    await member.click("#btn-chat")
    await member.fill("#chat-input", "Đồng ý với ý kiến của đồng chí Hường")
    await member.press("#chat-input", "Enter")
    await chair.locator("#chat-list .chat-text", has_text="Đồng ý với ý kiến").wait_for(state="attached", timeout=10000)
    speaker = await member.evaluate(BOX, f'#speaker .tile[data-id="{ids["away"]}"]')
    panel = await member.evaluate(BOX, "#panel")
    assert speaker["y"] >= 0 and speaker["bottom"] <= panel["y"] + 1 and speaker["height"] >= 150
    assert panel["bottom"] <= PHONE["height"] + 1
    await member.wait_for_function(PLAYING, arg=ids["away"], timeout=20000)
    await member.screenshot(path=str(shots / "room-phone-chat.png"))

    # Audio-only members are name tiles that say when they speak (not by colour alone).
    await prob.evaluate("() => { const m = window.chiboRoom.media; clearInterval(m.levelTimer); m.setSpeaking(true); }")
    tile = chair.locator(f'.tile[data-id="{ids["prob"]}"]')
    await chair.wait_for_function(
        f"() => document.querySelector('.tile[data-id=\"{ids['prob']}\"]').classList.contains('speaking')",
        timeout=10000)
    assert "no-video" in (await tile.get_attribute("class") or "")
    assert await tile.locator(".tile-name").inner_text() == "Lê Hoàng Dũng"
    assert await tile.locator(".initials").inner_text() == "HD"
    assert "đang nói" in await tile.locator(".tile-flags").inner_text()

    # Desktop: a grid of everyone, the sheet beside it.
    assert await chair.get_attribute("#stage", "data-layout") == "grid"
    assert await chair.locator("#strip .tile").count() == 5
    await chair.screenshot(path=str(shots / "room-desktop-grid.png"))

    # Keyboard: the controls are buttons with Vietnamese names, Enter works, Escape closes the
    # sheet and gives focus back.
    await member.keyboard.press("Escape")
    assert await member.is_hidden("#panel")
    assert await member.evaluate("document.activeElement.id") == "btn-chat"
    await member.focus("#btn-hand")
    await member.keyboard.press("Enter")
    await member.wait_for_function("() => document.querySelector('#btn-hand').getAttribute('aria-pressed') === 'true'",
                                   timeout=10000)
    names = await member.eval_on_selector_all(".controls button", "bs => bs.map(b => b.innerText.trim())")
    assert names == ["Tắt mic", "Bật camera", "Chỉ âm thanh", "Hạ tay", "Trò chuyện", "Người dự", "Rời phòng"], names
    # Zoomed to 200 % (the desktop's 1280×800 becomes 640×400 CSS pixels): the room becomes a
    # page that scrolls; nothing is cut off sideways, the videos keep a usable size, and every
    # control is whole and can be scrolled to.
    await chair.set_viewport_size({"width": 640, "height": 400})
    # 640 px: the phone layout. The width's media query reports its change at the page's next
    # frame, which a loaded machine may render after this line runs: wait for it.
    await chair.wait_for_function("() => document.querySelector('#stage').dataset.layout === 'speaker'",
                                  timeout=10000)
    assert await chair.evaluate("document.documentElement.scrollWidth") <= 640
    clipped = await chair.eval_on_selector_all(
        ".controls button", "bs => bs.filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.innerText)")
    assert clipped == [], clipped
    speaker = await chair.evaluate(BOX, "#speaker")
    assert speaker["height"] >= 200, speaker
    await chair.screenshot(path=str(shots / "room-desktop-zoom-200.png"), full_page=True)
    await chair.set_viewport_size(DESKTOP)
    for page, label in ((member, "phone"), (chair, "desktop")):
        problems = await audit_async(page)
        assert not problems, f"room ({label}):\n" + "\n".join(problems)

    # A vote: open, then closed; the card shrinks to its result and can be put away.
    await chair.click("[data-tab=counts]")
    await chair.fill("#vote-form input[name=title]", "Thông qua nghị quyết tháng 11")
    await chair.click("#vote-form button[type=submit]")
    await member.locator("#vote-buttons").wait_for(timeout=10000)
    await member.click("#vote-buttons [data-choice=agree]")
    await chair.click("#vote-close")
    await member.locator("#vote.closed").wait_for(timeout=10000)
    assert "Đã kết thúc. Kết quả:" in await member.inner_text("#vote")
    assert await member.is_hidden("#vote-buttons")
    await member.click("#vote-dismiss")
    assert await member.is_hidden("#vote")

    # Reload: the away member is back by herself, as the same participant, picture and all.
    await away.reload()
    await away.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=20000)
    assert await away.evaluate("window.chiboRoom.me") == ids["away"]
    assert await away.is_hidden("#prejoin")
    await member.wait_for_function(PLAYING, arg=ids["away"], timeout=25000)
    # Leaving on purpose is remembered too: a reload then asks again.
    await hall.click("#btn-leave")
    await hall.reload()
    await hall.wait_for_timeout(800)
    assert await hall.is_visible("#join-video") and await hall.evaluate("!window.chiboRoom.me")

    # The secretary removes a member: no "Vào lại" for them, now or after a reload.
    await chair.click("#btn-people")
    await chair.get_by_role("button", name="Mời Lê Hoàng Dũng ra khỏi phòng").click()
    await prob.locator("#ended").wait_for(timeout=10000)
    assert await prob.inner_text("#ended-title") == "Bạn đã được mời ra khỏi phòng họp"
    assert await prob.locator("#ended a:visible", has_text="Vào lại").count() == 0
    await prob.reload()
    assert "Bạn đã được mời ra khỏi phòng họp" in await prob.inner_text("#refused")
    assert await prob.locator("#join-video").count() == 0
    await prob.screenshot(path=str(shots / "room-removed-phone.png"))

    # The end of the meeting: the secretary is led to the roster and the minutes; members to
    # the minutes, with no way back into the room.
    await chair.click("#close-meeting button[type=submit]")
    await chair.wait_for_url(f"{server}/meetings/{meeting}/room")
    refused = chair.locator("#refused")
    assert "Cuộc họp đã kết thúc" in await refused.inner_text()
    await refused.get_by_role("link", name="Điểm danh").wait_for()
    assert await refused.get_by_role("link", name="Biên bản").get_attribute("href") == f"/meetings/{meeting}/minutes"
    await chair.screenshot(path=str(shots / "room-closed-desktop.png"))
    await member.locator("#ended").wait_for(timeout=10000)
    assert await member.inner_text("#ended-title") == "Cuộc họp đã kết thúc"
    assert await member.locator("#ended a:visible", has_text="Biên bản").count() == 1
    assert await member.locator("#ended a:visible", has_text="Vào lại").count() == 0
    assert await member.locator("#ended a:visible", has_text="Điểm danh").count() == 0
