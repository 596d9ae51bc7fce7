"""Two Chromium pages whose peer connections may only use TURN meet through a real coturn.

The server runs with ``ICE_TRANSPORT_POLICY=relay`` and the coturn fixture's URL and secret;
the page takes both from ``welcome`` (nothing in the page is there for tests). Marked ``netns``.
"""

from __future__ import annotations

import time

import pytest

from tests.browser import test_room
from tests.browser.test_room import VIDEO_PLAYING, open_room
from tests.support.turn import relay_settings

browser = test_room.browser  # the same Chromium fixture as the room test

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

#: The selected candidate pair of the page's link to ``id``, from getStats().
SELECTED_PAIR = """async (id) => {
  const link = window.chiboRoom.links.get(id);
  if (!link) return null;
  const report = await link.pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  return {
    state: pair.state, bytesReceived: pair.bytesReceived,
    policy: link.pc.getConfiguration().iceTransportPolicy,
    local: { type: local.candidateType, port: local.port, url: local.url, relayProtocol: local.relayProtocol },
    remote: { type: remote.candidateType, port: remote.port },
  };
}"""


#: Test instrumentation, injected before the page's scripts: records every peer connection's
#: icecandidateerror (the TURN server's answer when an allocation fails).
RECORD_ICE_ERRORS = """
window.iceErrors = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) {
    super(...args);
    this.addEventListener("icecandidateerror", (e) =>
      window.iceErrors.push({ code: e.errorCode, url: e.url, text: e.errorText }));
  }
};
"""


@pytest.fixture
def turn_ttl() -> int:
    return 600


@pytest.fixture
def room_settings(room_settings, coturn, turn_ttl):  # type: ignore[no-untyped-def]
    return relay_settings(room_settings, coturn, TURN_TTL=turn_ttl)


async def test_two_pages_with_relay_policy_connect_through_coturn(browser, server, room_world, coturn):
    chair = await open_room(browser, server, room_world.meeting_id, "sec_a")
    away = await open_room(browser, server, room_world.meeting_id, "away_a")
    chair_id, away_id = f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}"

    await chair.wait_for_function(VIDEO_PLAYING, arg=away_id, timeout=20000)
    await away.wait_for_function(VIDEO_PLAYING, arg=chair_id, timeout=20000)

    for page, remote in ((chair, away_id), (away, chair_id)):
        pair = await page.evaluate(SELECTED_PAIR, remote)
        assert pair is not None and pair["state"] == "succeeded", pair
        assert pair["policy"] == "relay"
        # Both ends of the pair in use are allocations on coturn (its relay ports).
        assert pair["local"]["type"] == pair["remote"]["type"] == "relay", pair
        assert pair["local"]["relayProtocol"] == "udp"
        assert pair["local"]["url"].startswith(f"turn:{coturn.host}:{coturn.port}"), pair
        assert coturn.min_port <= pair["local"]["port"] <= coturn.max_port, pair
        assert coturn.min_port <= pair["remote"]["port"] <= coturn.max_port, pair
        assert pair["bytesReceived"] > 0


async def open_instrumented_room(browser, server, meeting_id, username):  # type: ignore[no-untyped-def]
    """open_room, with RECORD_ICE_ERRORS in the page."""
    return await open_room(browser, server, meeting_id, username, RECORD_ICE_ERRORS)


@pytest.mark.parametrize("turn_ttl", [-60])  # credentials issued with a lifetime already over
async def test_pages_with_expired_turn_credentials_get_401_and_do_not_connect(
        browser, server, room_world, coturn):
    chair = await open_instrumented_room(browser, server, room_world.meeting_id, "sec_a")
    away = await open_instrumented_room(browser, server, room_world.meeting_id, "away_a")
    chair_id, away_id = f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}"
    username = await away.evaluate("window.chiboRoom.iceServers[0].username")
    assert int(username.split(":")[0]) < time.time()

    # Each page's link asks coturn for an allocation and is refused: 401, from our TURN URL.
    for page, remote in ((chair, away_id), (away, chair_id)):
        await page.wait_for_function(
            "(id) => window.chiboRoom.links.has(id) && window.chiboRoom.links.get(id).pc.iceGatheringState === 'complete'",
            arg=remote, timeout=10000)
        errors = await page.evaluate("window.iceErrors")
        assert errors and {e["code"] for e in errors} == {401}, errors
        assert all(e["url"].startswith(f"turn:{coturn.host}:{coturn.port}") for e in errors), errors
    # Gathering is complete without a single local candidate: there is nothing to connect
    # over, ever (no need to wait and see).
    for page, remote in ((chair, away_id), (away, chair_id)):
        state = await page.evaluate("""async (id) => {
          const pc = window.chiboRoom.links.get(id).pc;
          let local = 0;
          (await pc.getStats()).forEach((s) => { if (s.type === "local-candidate") local += 1; });
          return { connection: pc.connectionState, ice: pc.iceConnectionState, local };
        }""", remote)
        assert state["connection"] != "connected" and state["ice"] not in ("connected", "completed"), state
        assert state["local"] == 0, state
