"""Three Chromium pages in a relay-mode room: each sees the other two's video playing,
through one peer connection each, to the server relay.

Marked ``netns`` (real WebRTC media): scripts/test runs it inside a loopback-only namespace.
"""

from __future__ import annotations

import pytest

from meetings.planning.meetings import RemoteInvite
from tests.browser.test_room import VIDEO_PLAYING, browser, open_room  # noqa: F401 - the fixture
from tests.browser.test_screenshots import ARTIFACTS

pytestmark = [pytest.mark.anyio, pytest.mark.netns]


@pytest.fixture
def room_settings(room_settings):  # type: ignore[no-untyped-def]
    room_settings.values["RELAY_VIDEO_SENDERS"] = 0  # relay from the first camera
    return room_settings


@pytest.fixture
def invite_a2(sqlite_database, room_world):  # type: ignore[no-untyped-def]
    with sqlite_database.session() as s:
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=room_world.world.id("a2")))


async def test_three_pages_in_a_relay_room_see_each_others_video(browser, server, room_world, invite_a2):  # noqa: F811
    pages = [await open_room(browser, server, room_world.meeting_id, name) for name in ("sec_a", "away_a", "mem_a")]
    ids = [await page.evaluate("window.chiboRoom.me") for page in pages]
    for page, me in zip(pages, ids, strict=True):
        for other in ids:
            if other != me:
                await page.wait_for_function(VIDEO_PLAYING, arg=other, timeout=20000)
    for page in pages:
        # One connection each, to the relay; the page says which mode is in use.
        assert await page.evaluate("[...window.chiboRoom.links.keys()]") == ["relay"]
        assert await page.evaluate("window.chiboRoom.links.get('relay').pc.connectionState") == "connected"
        assert "qua máy chủ chuyển tiếp" in await page.inner_text("#mode")
    # Frames keep coming (not one frozen picture): decoded frame counts grow on every page.
    counts = [await page.evaluate(FRAMES_DECODED) for page in pages]
    await pages[0].wait_for_timeout(1500)
    for page, before in zip(pages, counts, strict=True):
        assert await page.evaluate(FRAMES_DECODED) > before + 10
    await pages[1].screenshot(path=str(ARTIFACTS / "room-relay.png"), full_page=False)


async def test_the_join_screen_warms_the_relay_link_without_entering_the_room(
        browser, server, room_world, invite_a2, sqlite_database):  # noqa: F811
    """Issue 15: a member reading the join screen already has a connected relay link, which
    carries nothing either way; nobody sees them and no presence is recorded until the click,
    which then uses that link (no new connection) and brings sound and picture both ways."""
    from sqlalchemy import select

    from meetings.proceedings.presence import PresenceInterval
    from tests.support.world import PASSWORD

    chair = await open_room(browser, server, room_world.meeting_id, "sec_a")
    chair_id = await chair.evaluate("window.chiboRoom.me")
    member_id = f"m{room_world.world.id('a2')}"
    context = await browser.new_context(viewport={"width": 390, "height": 800}, locale="vi-VN")
    page = await context.new_page()
    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", "mem_a")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}/")
    await page.goto(f"{server}/meetings/{room_world.meeting_id}/room")
    await page.wait_for_function("() => { const w = window.chiboRoom && window.chiboRoom.warmRelay;"
                                 " return !!w && w.pc.connectionState === 'connected'; }", timeout=15000)
    await page.wait_for_timeout(1500)   # long enough for frames to arrive if any were forwarded
    # Nothing flows on the warm link, and the room does not know the member is there.
    assert await page.evaluate(PACKETS_IN, "warm") == 0
    assert await page.evaluate("window.chiboRoom.me") is None
    assert await chair.evaluate("[...window.chiboRoom.participants.keys()]") == [chair_id]
    assert await chair.locator(f'.tile[data-id="{member_id}"]').count() == 0
    with sqlite_database.session() as s:
        assert s.scalars(select(PresenceInterval).where(
            PresenceInterval.meeting_id == room_world.meeting_id,
            PresenceInterval.member_id == room_world.world.id("a2"))).all() == []

    await page.click("#join-video")
    await page.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)
    await page.wait_for_function(VIDEO_PLAYING, arg=chair_id, timeout=20000)
    await chair.wait_for_function(VIDEO_PLAYING, arg=member_id, timeout=20000)
    assert await page.evaluate("window.chiboRoom.links.get('relay').adopted") is True
    assert await page.evaluate(PACKETS_IN, "relay") > 0


#: Audio and video packets a page received on its relay link ("relay") or its warm one ("warm").
PACKETS_IN = """async (which) => {
  const room = window.chiboRoom;
  const link = which === "warm" ? room.warmRelay : room.links.get("relay");
  const report = await link.pc.getStats();
  let packets = 0;
  report.forEach((s) => { if (s.type === "inbound-rtp") packets += s.packetsReceived || 0; });
  return packets;
}"""


FRAMES_DECODED = """async () => {
  const report = await window.chiboRoom.links.get("relay").pc.getStats();
  let frames = 0;
  report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
  return frames;
}"""
