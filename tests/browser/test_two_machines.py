"""Two app machines behind a 1:1 NAT serve one meeting; the members are outside it.

Each machine is a network namespace running ``python -m app serve`` on a private address with
``RELAY_PUBLIC_IP`` set to its public one; both share one PostgreSQL and one Redis; the
members' Chromium runs in a third namespace that reaches the machines only through nftables
DNAT to their public addresses (tests/support/province_lab.py draws the network). The
secretary opens the room through machine 1, which then holds the room and its relay; the
away member signals through machine 2, as a load balancer might send her, and her media
goes to machine 1's public address, which is all the relay's offer names.

Marked ``netns`` (real WebRTC media); needs root, nftables, PostgreSQL and Redis binaries.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from app.db import Database, make_engine
from app.migrate import migrate
from scripts.screenshots import CHROMIUM_ARGS, MEDIA_ARGS
from tests.browser.test_room import VIDEO_PLAYING
from tests.browser.test_room_relay import FRAMES_DECODED
from tests.support.netlab import LabUnavailable
from tests.support.province_lab import ProvinceLab
from tests.support.room_fixtures import seed_room_world
from tests.support.world import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

SELECTED_REMOTE = """async () => {
  const report = await window.chiboRoom.links.get("relay").pc.getStats();
  let pair = null;
  report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId); });
  if (!pair) return null;
  const remote = report.get(pair.remoteCandidateId);
  return remote.address || remote.ip;
}"""


LINK_STATE = """async () => {
  const links = [...window.chiboRoom.links.entries()];
  const out = [];
  for (const [peer, link] of links) {
    const pairs = [];
    (await link.pc.getStats()).forEach((s) => {
      if (s.type === "candidate-pair") pairs.push([s.state, s.localCandidateId, s.remoteCandidateId]);
      if (s.type === "remote-candidate" || s.type === "local-candidate")
        pairs.push([s.type, s.id, s.address, s.port, s.candidateType]);
    });
    out.push({peer, ice: link.pc.iceConnectionState, conn: link.pc.connectionState, pairs});
  }
  return out;
}"""


async def open_room(browser, server, meeting_id, username, frames):  # type: ignore[no-untyped-def]
    """test_room.open_room, noting the room's frames (type, and the relay session of offers) for
    the failure message."""
    context = await browser.new_context(viewport={"width": 390, "height": 800}, locale="vi-VN")
    page = await context.new_page()

    def note(direction: str, payload: str | bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        frames.append(f"{direction}{message.get('type')}:{message.get('sender_session') or message.get('to_session') or ''}")

    page.on("websocket", lambda ws: (ws.on("framereceived", lambda f: note("<", f)),
                                     ws.on("framesent", lambda f: note(">", f))))
    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}/")
    await page.goto(f"{server}/meetings/{meeting_id}/room")
    await page.click("#join-video")
    await page.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=15000)
    return page


@pytest.fixture
def lab():  # type: ignore[no-untyped-def]
    try:
        lab = ProvinceLab().start()
    except LabUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def province(lab):  # type: ignore[no-untyped-def]
    """The shared database migrated and seeded; both machines serving it."""
    db = Database(make_engine(lab.database_url()))
    migrate(db.engine)
    world = seed_room_world(db)
    db.dispose()
    lab.serve({"SECRET_KEY": "province-test-secret-0123456789", "LOG_REQUESTS": "false", "LOG_LEVEL": "WARNING",
               "NOTICE_INTERVAL": "0", "RELAY_VIDEO_SENDERS": "0", "ROOM_GRACE_SECONDS": "5"})
    return world


async def test_members_outside_the_nat_reach_the_relay_at_its_public_address(lab, province):
    from playwright.async_api import async_playwright

    one, two = lab.machines
    secure = ",".join(m.url for m in lab.machines)  # plain http on a public address: no camera otherwise
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=lab.chromium_wrapper(),
                                          args=[*CHROMIUM_ARGS, *MEDIA_ARGS,
                                                f"--unsafely-treat-insecure-origin-as-secure={secure}"])
        try:
            frames: dict[str, list[str]] = {"chair": [], "away": []}
            chair = await open_room(browser, one.url, province.meeting_id, "sec_a", frames["chair"])
            away = await open_room(browser, two.url, province.meeting_id, "away_a", frames["away"])
            chair_id = await chair.evaluate("window.chiboRoom.me")
            away_id = await away.evaluate("window.chiboRoom.me")
            try:
                await chair.wait_for_function(VIDEO_PLAYING, arg=away_id, timeout=30000)
                await away.wait_for_function(VIDEO_PLAYING, arg=chair_id, timeout=30000)
            except Exception as exc:
                states = [await page.evaluate(LINK_STATE) for page in (chair, away)]
                raise AssertionError(f"no video: {states}\n{lab.counters()}\n{frames}\n{lab.logs()}") from exc
            for page in (chair, away):
                assert await page.evaluate("[...window.chiboRoom.links.keys()]") == ["relay"]
                offer = await page.evaluate("window.chiboRoom.links.get('relay').pc.remoteDescription.sdp")
                # The relay (machine 1, which holds the room) offered its public address only.
                assert f" {one.public} " in offer and one.private not in offer and two.public not in offer
                assert await page.evaluate(SELECTED_REMOTE) == one.public
            # Media keeps flowing both ways, through the NAT.
            before = [await page.evaluate(FRAMES_DECODED) for page in (chair, away)]
            counted = lab.counters()
            await asyncio.sleep(2)
            after = [await page.evaluate(FRAMES_DECODED) for page in (chair, away)]
            assert all(b > a + 10 for a, b in zip(before, after, strict=True)), (before, after)
        finally:
            await browser.close()
    now = lab.counters()
    assert now["members->app1 udp"] - counted["members->app1 udp"] > 100, now
    assert now["app1->members udp"] - counted["app1->members udp"] > 100, now
    # Machine 2 carried the away member's pages and WebSocket, and no media.
    assert now["members->app2 tcp"] > 0 and now["members->app2 udp"] == 0 and now["app2->members udp"] == 0, now
