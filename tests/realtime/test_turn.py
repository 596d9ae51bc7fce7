"""TURN for real: aiortc peers in the room reach each other only through a real coturn.

The server runs with ``ICE_TRANSPORT_POLICY=relay`` and the coturn fixture's URL and secret, so
``welcome`` hands each participant TURN REST credentials and the relay policy; RoomClient builds
its RTCPeerConnection from them as a browser does. Marked ``netns`` where media flows
(scripts/test runs those inside a loopback-only namespace).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aioice import stun, turn

from tests.support.turn import relay_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def turn_ttl() -> int:
    return 600


@pytest.fixture
def room_settings(room_settings, coturn, turn_ttl):  # type: ignore[no-untyped-def]
    return relay_settings(room_settings, coturn, TURN_TTL=turn_ttl)


def selected_pair(link):  # type: ignore[no-untyped-def]
    """The nominated candidate pair of a link's ICE transport (what getStats calls selected).

    aiortc has no candidate-pair stats; this reads aioice's nominated pair (aiortc is pinned)."""
    transport = link.pc.getTransceivers()[0].sender.transport.transport
    pairs = transport._connection._nominated
    assert pairs, "no nominated candidate pair"
    return next(iter(pairs.values()))


async def allocate(server_addr, username, password):  # type: ignore[no-untyped-def]
    """One TURN allocation over UDP, as aiortc makes it; returns the relayed address."""
    transport, _ = await turn.create_turn_endpoint(asyncio.DatagramProtocol, server_addr, username, password)
    try:
        return transport.get_extra_info("sockname")
    finally:
        transport.close()


def in_relay_range(port: int, coturn) -> bool:  # type: ignore[no-untyped-def]
    return coturn.min_port <= port <= coturn.max_port


async def wait_link(client, remote):  # type: ignore[no-untyped-def]
    while remote not in client.links:
        await asyncio.sleep(0.02)
    await client.links[remote].connected.wait()


@pytest.mark.netns
async def test_aiortc_peers_with_relay_policy_connect_through_coturn_and_receive_media(
        participant, room_world, coturn):
    chair, away = participant("sec_a", media=True), participant("away_a", media=True)
    await chair.join()
    await away.join()
    welcome = await away.wait_for("welcome")
    assert welcome["ice_transport_policy"] == "relay"
    [server] = welcome["ice_servers"]
    assert server["urls"] == [coturn.url]
    assert int(server["username"].split(":")[0]) > time.time()

    a1, a4 = f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}"
    await asyncio.wait_for(asyncio.gather(wait_link(chair, a4), wait_link(away, a1)), 15)
    await chair.wait_media([a4], frames=10)
    await away.wait_media([a1], frames=10)

    for client, remote in ((chair, a4), (away, a1)):
        link = client.links[remote]
        assert link.pc.connectionState == "connected"
        assert link.video_size == (320, 240)
        # Only relayed candidates were gathered, and the pair in use is relay/relay: both ends
        # are allocations on coturn (its relay ports), none a host address.
        gatherer = link.pc.getTransceivers()[0].sender.transport.transport.iceGatherer
        assert {c.type for c in gatherer.getLocalCandidates()} == {"relay"}
        pair = selected_pair(link)
        assert (pair.local_candidate.type, pair.remote_candidate.type) == ("relay", "relay")
        assert in_relay_range(pair.local_candidate.port, coturn)
        assert in_relay_range(pair.remote_candidate.port, coturn)


@pytest.mark.netns
@pytest.mark.parametrize("turn_ttl", [-60])  # credentials issued with a lifetime already over
async def test_expired_turn_credentials_are_refused_and_no_connection_is_made(participant, room_world, coturn):
    chair, away = participant("sec_a", media=True), participant("away_a", media=True)
    await chair.join()
    await away.join()
    [server] = (await away.wait_for("welcome"))["ice_servers"]
    assert int(server["username"].split(":")[0]) < time.time()

    # coturn refuses the allocation: 401 even after aioice retried with the realm and nonce.
    addr = (coturn.host, coturn.port)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(addr, server["username"], server["credential"])
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    # The same user with a live credential is allocated: the refusal is the expiry.
    assert in_relay_range((await allocate(addr, *coturn.credentials("m0", 60)))[1], coturn)

    # In the room: negotiation completes, but with no relayed candidate no pair can form, so
    # the peer connections can never connect (aiortc leaves them short of "failed", so it is
    # the empty candidate list that says so, not a wait).
    a1, a4 = f"m{room_world.world.id('a1')}", f"m{room_world.world.id('a4')}"

    async def negotiated(client, remote) -> None:  # type: ignore[no-untyped-def]
        while not (remote in client.links and client.links[remote].pc.remoteDescription is not None
                   and client.links[remote].pc.localDescription is not None):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(asyncio.gather(negotiated(chair, a4), negotiated(away, a1)), 15)
    for client, remote in ((chair, a4), (away, a1)):
        link = client.links[remote]
        gatherer = link.pc.getTransceivers()[0].sender.transport.transport.iceGatherer
        assert gatherer.state == "completed" and gatherer.getLocalCandidates() == []
        assert "connected" not in link.states and link.pc.connectionState != "connected"
        assert "typ relay" not in link.pc.localDescription.sdp
        assert link.frames == {"video": 0, "audio": 0}


@pytest.mark.parametrize("turn_ttl", [2])
async def test_participants_get_fresh_credentials_before_theirs_expire(participant, room_world, coturn):
    away = participant("away_a")
    await away.join()
    welcome = await away.wait_for("welcome")
    [old] = welcome["ice_servers"]
    # Every TURN_TTL / 2 seconds: links made later in a long meeting need live credentials.
    fresh = await away.wait_for("ice_servers", timeout=15)
    [new] = fresh["ice_servers"]
    assert new["urls"] == old["urls"] == [coturn.url]
    old_expiry, user = old["username"].split(":")
    new_expiry, new_user = new["username"].split(":")
    assert new_user == user == f"m{room_world.world.id('a4')}"
    assert int(new_expiry) > int(old_expiry)
    # What the client's next link will use: the latest it was sent.
    latest = [m for m in away.messages if m["type"] == "ice_servers"][-1]
    assert away.ice_servers == latest["ice_servers"]
    # coturn accepts them.
    relayed = await allocate((coturn.host, coturn.port), new["username"], new["credential"])
    assert in_relay_range(relayed[1], coturn)
