"""Relay mode under ``ICE_TRANSPORT_POLICY=relay``: the page's one peer connection, to the
server relay, gathers only TURN (relay) candidates — never the member's own addresses — and
still carries media, through a real coturn.

The room moves to the relay from the first camera (``RELAY_VIDEO_SENDERS=0``). Marked ``netns``.
"""

from __future__ import annotations

import pytest

from tests.browser import test_room
from tests.browser.test_room import VIDEO_PLAYING, open_room
from tests.support.turn import relay_settings

browser = test_room.browser  # the same Chromium fixture as the room test

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

#: Test instrumentation, injected before the page's scripts: every peer connection keeps the
#: candidates it gathered, in the order it gathered them.
RECORD_CANDIDATES = """
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) {
    super(...args);
    this.gathered = [];
    this.addEventListener("icecandidate", (e) => {
      if (e.candidate && e.candidate.candidate) this.gathered.push(e.candidate.type || e.candidate.candidate);
    });
  }
};
"""

RELAY_LINK = """() => {
  const link = window.chiboRoom.links.get("relay");
  if (!link || link.pc.iceGatheringState !== "complete") return null;
  return { policy: link.pc.getConfiguration().iceTransportPolicy, gathered: link.pc.gathered };
}"""


@pytest.fixture
def room_settings(room_settings, coturn):  # type: ignore[no-untyped-def]
    return relay_settings(room_settings, coturn, RELAY_VIDEO_SENDERS=0)


async def open_recorded_room(browser, server, meeting_id, username):  # type: ignore[no-untyped-def]
    """open_room, with RECORD_CANDIDATES in the page."""
    return await open_room(browser, server, meeting_id, username, RECORD_CANDIDATES)


async def test_relay_mode_gathers_only_relay_candidates(browser, server, room_world, coturn):
    chair = await open_recorded_room(browser, server, room_world.meeting_id, "sec_a")
    away = await open_recorded_room(browser, server, room_world.meeting_id, "away_a")
    chair_id, away_id = f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}"

    for page in (chair, away):
        link = await (await page.wait_for_function(RELAY_LINK, timeout=20000)).json_value()
        assert link["policy"] == "relay", link
        assert link["gathered"] and set(link["gathered"]) == {"relay"}, link
    # Media still flows, each way, over the TURN allocations.
    await chair.wait_for_function(VIDEO_PLAYING, arg=away_id, timeout=20000)
    await away.wait_for_function(VIDEO_PLAYING, arg=chair_id, timeout=20000)
    assert await away.evaluate("[...window.chiboRoom.links.keys()]") == ["relay"]
