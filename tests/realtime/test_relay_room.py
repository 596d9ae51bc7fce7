"""The topology switch through the real signalling: aiortc participants start in a mesh, the
room moves to the relay without dropping anyone, and data saver receives one video.

Marked ``netns``: scripts/test runs these inside a loopback-only network namespace.
"""

from __future__ import annotations

import asyncio

import pytest

from meetings.planning.meetings import RemoteInvite

pytestmark = [pytest.mark.anyio, pytest.mark.netns]


@pytest.fixture
def room_settings(room_settings, request):  # type: ignore[no-untyped-def]
    # Two cameras make a mesh; the third moves the room to the relay. The data-saver test
    # keeps the default, so that only data saver can move it.
    room_settings.values["RELAY_VIDEO_SENDERS"] = 4 if "data_saver" in request.node.name else 2
    return room_settings


@pytest.fixture
def invite_a2(sqlite_database, room_world):  # type: ignore[no-untyped-def]
    with sqlite_database.session() as s:
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=room_world.world.id("a2")))


def pid(room_world, key: str) -> str:  # type: ignore[no-untyped-def]
    return f"m{room_world.world.id(key)}"


async def test_third_camera_moves_the_room_to_the_relay_without_dropping_anyone(participant, room_world, invite_a2):
    chair, away, member = (participant(n, media=True) for n in ("sec_a", "away_a", "mem_a"))
    a1, a4, a2 = pid(room_world, "a1"), pid(room_world, "a4"), pid(room_world, "a2")
    await chair.join()
    await away.join()
    await chair.wait_media([a4])
    await away.wait_media([a1])
    assert chair.topology == "mesh" and set(chair.links) == {a4}

    await member.join()  # three cameras > RELAY_VIDEO_SENDERS=2
    welcome = await member.wait_for("welcome")
    assert welcome["topology"] == "relay" and welcome["peers"] == ["relay"] and welcome["polite"] == {"relay": True}
    for client in (chair, away):
        switch = await client.wait_for("topology")
        assert switch["topology"] == "relay" and switch["reason"] == "video_senders"
        assert switch["relay_session"] == welcome["relay_session"]
    # While the relay link comes up, the mesh link still carries media (make before break).
    await chair.wait_relayed([a4, a2], frames=15)
    await away.wait_relayed([a1, a2], frames=15)
    await member.wait_relayed([a1, a4], frames=15)
    for client in (chair, away, member):
        if client.links_closing is not None:
            await asyncio.wait_for(client.links_closing, 12)
        assert set(client.links) == {"relay"}
        assert client.links["relay"].pc.connectionState == "connected"
        # Nobody left the room on the way.
        assert not [m for m in client.messages if m["type"] == "left"]


async def test_data_saver_receives_every_voice_but_only_the_floor_holders_video(participant, room_world, invite_a2):
    chair, away, saver = (participant(n, media=True) for n in ("sec_a", "away_a", "mem_a"))
    a1, a4 = pid(room_world, "a1"), pid(room_world, "a4")
    for client in (chair, away, saver):
        await client.join()
    await saver.wait_media([a1, a4])
    assert saver.topology == "mesh"
    await chair.send({"type": "give_floor", "participant": a4})
    await saver.set_data_saver(True)
    switch = await chair.wait_for("topology")
    assert switch["reason"] == "data_saver"
    await saver.wait_relayed([a1, a4], frames=10, kinds=("audio",))
    await saver.wait_relayed([a4], frames=15, kinds=("video",))

    async def paused() -> None:
        while saver.links.get("relay") is None or saver.links["relay"].video_paused != [a1]:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(paused(), 10)
    chair_video = saver.relay_frames.get(a1, {}).get("video", 0)
    await saver.wait_relayed([a4, a1], frames=20, kinds=("audio",))
    assert saver.relay_frames.get(a1, {}).get("video", 0) <= chair_video + 2  # at most frames in flight
    # The others still receive everybody's video.
    await chair.wait_relayed([a4], frames=10, kinds=("video",))
    await away.wait_relayed([a1], frames=10, kinds=("video",))


async def test_garbage_answers_and_candidates_to_the_relay_get_typed_errors_and_nobody_loses_media(
        participant, room_world, invite_a2):
    """A broken client answers the relay's offer with garbage and trickles malformed
    candidates before its real answer: it is told what was wrong, gets connected once it
    answers properly, and the others' media never stops."""
    chair, away, member = (participant(n, media=True) for n in ("sec_a", "away_a", "mem_a"))
    a1, a4, a2 = pid(room_world, "a1"), pid(room_world, "a4"), pid(room_world, "a2")
    await chair.join()
    await away.join()
    await chair.wait_media([a4])
    garbage_answers = ["tôi không phải SDP", "v=0\r\n", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"]
    garbage_candidates = [{"candidate": "candidate:rác", "sdpMid": "0", "sdpMLineIndex": 0},
                          {"candidate": "candidate:1 1 udp nhiều 127.0.0.1 9 typ host", "sdpMid": "0"},
                          # Well-formed lines naming what no browser sends: the relay must not
                          # check (or resolve) whatever a client names.
                          {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 0 typ host", "sdpMid": "0"},
                          {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 70000 typ host", "sdpMid": "0"},
                          {"candidate": "candidate:1 1 udp 2122260223 relay.example.com 9 typ host", "sdpMid": "0"},
                          {"candidate": "candidate:1 7 udp 2122260223 127.0.0.1 9 typ host", "sdpMid": "0"},
                          {"candidate": "candidate:1 1 sctp 2122260223 127.0.0.1 9 typ host", "sdpMid": "0"},
                          {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 9 typ bogus", "sdpMid": "0"}]
    answered = asyncio.Event()
    real_signal = member._signal

    async def broken_then_real(link, message):  # type: ignore[no-untyped-def]
        if link.remote == "relay" and message["type"] == "offer" and not answered.is_set():
            answered.set()
            for candidate in garbage_candidates:
                await member.send({"type": "candidate", "to": "relay", "to_session": link.session,
                                   "candidate": candidate})
            for sdp in garbage_answers:
                await member.send({"type": "answer", "to": "relay", "to_session": link.session, "sdp": sdp})
        await real_signal(link, message)  # the relay handles its link's frames in order

    member._signal = broken_then_real  # type: ignore[method-assign]
    await member.join()  # the third camera: the room moves to the relay
    await asyncio.wait_for(answered.wait(), 20)
    await member.wait_relayed([a1, a4], frames=15, timeout=30)
    errors = [m for m in member.messages if m["type"] == "error"]
    assert len(errors) == len(garbage_answers) + len(garbage_candidates), errors
    assert [(e["code"], e["ref"]) for e in errors] == (
        [("bad_message", "candidate")] * len(garbage_candidates) + [("bad_message", "answer")] * len(garbage_answers))
    assert all("không hợp lệ" in e["message"] for e in errors)
    # The others receive each other and the newcomer through the relay; nobody left.
    await chair.wait_relayed([a4, a2], frames=15)
    await away.wait_relayed([a1, a2], frames=15)
    for client in (chair, away, member):
        assert not [m for m in client.messages if m["type"] == "left"]
    # The broken client's socket is still served.
    await member.send({"type": "chat", "text": "Đã vào được"})
    assert (await chair.wait_for("chat"))["message"]["text"] == "Đã vào được"


async def test_a_join_screen_in_a_relay_room_gets_a_link_that_carries_nothing_until_join(
        participant, room_world, invite_a2):
    """Issue 15: the relay offers a warm link (upload m-lines only) to a member's join screen;
    nobody hears of the member before ``join``, after which the relay re-offers on the same
    link with the others' tracks."""
    chair, away = participant("sec_a", media=True), participant("away_a", media=True)
    a1, a4 = pid(room_world, "a1"), pid(room_world, "a4")
    await chair.join()
    await chair.set_data_saver(True)  # moves the room to the relay
    await chair.wait_for("topology")
    await away.login()
    await away.connect(warm=True)
    ready = await away.wait_for("ready")
    assert ready["relay_session"] is not None
    tracks = await away.wait_for("relay_tracks")
    assert set(tracks["upload"]) == {"audio", "video"} and tracks["tracks"] == []
    first = await away.wait_for("offer")
    assert first["sender"] == "relay" and first["sender_session"] == ready["relay_session"]
    # This client answers with its camera and microphone on the upload m-lines already (the
    # room page puts no track there before the click): the relay must hold what arrives.
    await away._new_link("relay", ready["relay_session"], True)
    link = away.links["relay"]
    link.upload = tracks["upload"]
    await away._signal(link, first)
    await asyncio.wait_for(link.connected.wait(), 15)
    await asyncio.sleep(1.5)
    assert a4 not in chair.relay_frames
    assert not [m for m in chair.messages if m["type"] in ("joined", "participant", "relay_tracks") and a4 in str(m)]

    await away.send({"type": "join"})
    assert (await away.wait_for("welcome"))["relay_session"] == ready["relay_session"]
    assert (await chair.wait_for("joined"))["participant"]["id"] == a4
    # The same link (its number) now names the chair's tracks.
    named = await away.wait_until(lambda m: m["type"] == "relay_tracks"
                                  and any(t["participant"] == a1 for t in m["tracks"]), timeout=20)
    assert named["link"] == tracks["link"]
    # (Media after the click: tests/browser/test_room_relay.py, with the page that adopts the
    # link; this client makes a new one on welcome.)


async def test_a_join_screen_the_lobby_would_hold_gets_no_relay_link(participant, room_world, sqlite_database):
    from meetings.planning.meetings import Meeting

    with sqlite_database.session() as s:
        s.get(Meeting, room_world.meeting_id).lobby = True
    chair, away = participant("sec_a"), participant("away_a")
    await chair.join()
    await chair.set_data_saver(True)
    await chair.wait_for("topology")
    await away.login()
    await away.connect(warm=True)
    assert (await away.wait_for("ready"))["relay_session"] is None
    await asyncio.sleep(0.5)
    assert not [m for m in away.messages if m["type"] in ("offer", "relay_tracks")]
