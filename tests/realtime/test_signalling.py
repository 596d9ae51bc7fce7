"""The room's signalling server, through real WebSockets on loopback (no media here)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from sqlalchemy import select

from meetings.foundation.audit import AuditEntry
from meetings.organisation.sessions import LoginSession
from meetings.planning.meetings import Meeting
from meetings.proceedings import presence
from meetings.proceedings.chat import ChatMessage
from realtime.tokens import JoinGrant, issue_join_token

pytestmark = pytest.mark.anyio


def pid(room_world, key):
    return f"m{room_world.world.id(key)}"


def forged_token(settings, room_world, username, meeting_id, member_key=None, device="member"):
    """A correctly signed token the page would never issue (the server must check anyway),
    bound to the account's latest login session."""
    account_id = room_world.world.accounts[username]
    member_id = room_world.world.id(member_key) if member_key else None
    with room_world.db.session() as s:
        session_id = s.scalars(select(LoginSession.id).where(LoginSession.account_id == account_id)
                               .order_by(LoginSession.id.desc())).first()
    return issue_join_token(settings.secret_key, JoinGrant(meeting_id=meeting_id, account_id=account_id,
                                                           member_id=member_id, device=device, session_id=session_id))


async def test_two_participants_see_each_other(participant, room_world):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    welcome = await away.wait_for("welcome")
    assert welcome["you"] == pid(room_world, "a4") and welcome["topology"] == "mesh"
    assert {p["id"] for p in welcome["participants"]} == {pid(room_world, "a1"), pid(room_world, "a4")}
    assert welcome["peers"] == [pid(room_world, "a1")]
    joined = await chair.wait_for("joined")
    assert joined["participant"]["name"] == "Phạm Thị Hường" and joined["participant"]["voter"] is True
    # Exactly one side of the pair is polite.
    assert joined["polite"] != welcome["polite"][pid(room_world, "a1")]
    roles = {p["id"]: p["role"] for p in welcome["participants"]}
    assert roles[pid(room_world, "a1")] == "chair"


async def test_refused_token(participant):
    client = participant("away_a")
    await client.login()
    await client.connect(token="khong-phai-ma-hop-le")
    error = await client.wait_for("error")
    assert error["code"] == "auth_failed" and "không hợp lệ" in error["message"]
    assert await client.wait_closed() == 4401


async def test_token_of_another_meeting_or_without_session_is_refused(participant, room_world, server, room_settings):
    client = participant("away_a")
    await client.login()
    token = await client.join_token()
    other = participant("away_a", meeting_id=room_world.other_meeting_id)
    other.http.cookies = client.http.cookies
    await other.connect(token=token)
    assert (await other.wait_for("error"))["code"] == "auth_failed"
    assert await other.wait_closed() == 4401
    stranger = participant("away_a")  # never logged in: no session cookie
    await stranger.connect(token=token)
    assert "Phiên đăng nhập" in (await stranger.wait_for("error"))["message"]
    assert await stranger.wait_closed() == 4401


async def test_member_of_another_cell_is_refused(participant, room_world, server, room_settings):
    outsider = participant("sec_b")
    await outsider.login()
    page = await outsider.http.get(f"/meetings/{room_world.meeting_id}/room")
    assert page.status_code == 404 and "Không tìm thấy trang" in page.text
    r = await outsider.http.get(f"/meetings/{room_world.meeting_id}/room/token")
    assert r.status_code == 404
    token = forged_token(room_settings, room_world, "sec_b", room_world.meeting_id, "b1")
    await outsider.connect(token=token)
    error = await outsider.wait_for("error")
    assert error["code"] == "not_allowed" and "không sinh hoạt tại chi bộ này" in error["message"]
    assert await outsider.wait_closed() == 4403


async def test_member_not_on_the_remote_list_is_told_why(participant, room_world, server, room_settings):
    member = participant("mem_a")  # a2: not away, not invited
    await member.login()
    page = await member.http.get(f"/meetings/{room_world.meeting_id}/room")
    assert page.status_code == 200 and "không có trong danh sách tham gia trực tuyến" in page.text
    r = await member.http.get(f"/meetings/{room_world.meeting_id}/room/token")
    assert r.status_code == 403 and "danh sách tham gia trực tuyến" in r.json()["message"]
    await member.connect(token=forged_token(room_settings, room_world, "mem_a", room_world.meeting_id, "a2"))
    assert (await member.wait_for("error"))["code"] == "not_allowed"
    assert await member.wait_closed() == 4403


async def test_cell_without_pilot_approval_refuses_remote_members(participant, room_world, room_settings,
                                                                  sqlite_database):
    """C5: a member of a cell without online-pilot approval cannot join remotely."""
    from meetings.foundation.actors import Actor
    from meetings.organisation import accounts
    from meetings.organisation.members import Member
    from meetings.planning.meetings import RemoteInvite
    from tests.support.world import PASSWORD

    with sqlite_database.session() as s:
        b2 = s.get(Member, room_world.world.id("b2"))
        account = accounts.create_account(s, Actor.system("t"), username="b2", password=PASSWORD,
                                          display_name=b2.full_name, member=b2, must_change_password=False)
        room_world.world.accounts["b2"] = account.id
        s.add(RemoteInvite(meeting_id=room_world.other_meeting_id, member_id=b2.id))
    client = participant("b2", meeting_id=room_world.other_meeting_id)
    await client.login()
    r = await client.http.get(f"/meetings/{room_world.other_meeting_id}/room/token")
    assert r.status_code == 403 and "phê duyệt thí điểm" in r.json()["message"]
    await client.connect(token=forged_token(room_settings, room_world, "b2", room_world.other_meeting_id, "b2"))
    assert "Hướng dẫn 03-HD/TW" in (await client.wait_for("error"))["message"]
    assert await client.wait_closed() == 4403
    chair = participant("sec_b", meeting_id=room_world.other_meeting_id)
    await chair.join()  # the secretary may still run the (in-person) room


async def test_closed_meeting_refuses_and_ends_the_room(participant, room_world, server, room_settings, sqlite_database):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    token = await chair.http.get("/")  # a page carrying the CSRF token
    csrf = token.text.split('name="csrf-token" content="')[1].split('"')[0]
    r = await chair.http.post(f"/meetings/{room_world.meeting_id}/close", data={"csrf_token": csrf})
    assert r.status_code == 303
    state = await away.wait_for("meeting")
    assert state["status"] == "closed" and state["message"] == "Cuộc họp đã kết thúc."
    assert await away.wait_closed() == 4409
    late = participant("away_a")
    await late.login()
    r = await late.http.get(f"/meetings/{room_world.meeting_id}/room/token")
    assert r.status_code == 403 and r.json()["message"] == "Cuộc họp đã kết thúc."
    await late.connect(token=forged_token(room_settings, room_world, "away_a", room_world.meeting_id, "a4"))
    assert (await late.wait_for("error"))["message"] == "Cuộc họp đã kết thúc."
    with sqlite_database.session() as s:
        intervals = presence.intervals(s, room_world.meeting_id)
        assert intervals and all(i.left_at is not None for i in intervals)


async def test_meeting_not_yet_open(participant, room_world, sqlite_database):
    from meetings.planning.meetings import MeetingStatus

    with sqlite_database.session() as s:
        s.get(Meeting, room_world.meeting_id).status = MeetingStatus.SCHEDULED
    away = participant("away_a")
    await away.login()
    await away.connect()
    error = await away.wait_for("error")
    assert error["code"] == "meeting_not_open" and "chưa bắt đầu" in error["message"]
    assert await away.wait_closed() == 4409


async def test_foreign_origin_is_refused_before_the_handshake(participant):
    client = participant("away_a")
    await client.login()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await client.connect(origin="https://evil.example")
    assert refused.value.response.status_code == 403


async def test_malformed_frames_get_typed_errors_and_the_connection_survives(participant):
    client = participant("away_a")
    await client.join()
    cases = [
        ("{not json", "bad_json"),
        (json.dumps(["hello"]), "bad_message"),
        (json.dumps({"type": "teleport"}), "unknown_type"),
        (json.dumps({"type": "chat"}), "bad_message"),
        (json.dumps({"type": "hand", "raised": "yes"}), "bad_message"),
        (json.dumps({"type": "offer", "to": "m999", "sdp": "v=0"}), "bad_target"),
        (json.dumps({"type": "chat", "text": "x" * 70_000}), "too_large"),
        (b"\xff\xfe binary", "bad_json"),
        (json.dumps({"type": "mute", "participant": "m1"}), "forbidden"),
    ]
    for frame, code in cases:
        client.messages.clear()
        await client.send_raw(frame)
        error = await client.wait_for("error")
        assert error["code"] == code, (frame[:40], error)
        assert error["message"]
    client.messages.clear()
    await client.send({"type": "ping", "t": 42})
    assert (await client.wait_for("pong"))["t"] == 42


async def test_flooding_is_throttled_then_cut_off(participant):
    client = participant("away_a")
    await client.join()
    for _ in range(150):
        await client.send({"type": "ping", "t": 1})
    assert (await client.wait_for("error", code="rate_limited"))["message"]
    await asyncio.sleep(3)  # the bucket refills: the connection is still usable
    client.messages.clear()
    await client.send({"type": "ping", "t": 2})
    assert (await client.wait_for("pong", t=2))
    for _ in range(1200):
        await client.send({"type": "ping", "t": 3})
    assert await client.wait_closed() == 1008


async def test_chat_is_kept_and_late_joiners_get_history(participant, room_world, sqlite_database):
    chair = participant("sec_a")
    await chair.join()
    await chair.send({"type": "chat", "text": "Kính chào các đồng chí <b>ở xa</b>!"})
    sent = await chair.wait_for("chat")
    assert sent["message"]["text"] == "Kính chào các đồng chí <b>ở xa</b>!"
    await chair.send({"type": "chat", "text": "   "})
    assert "trống" in (await chair.wait_for("error"))["message"]
    late = participant("away_a")
    await late.join()
    welcome = await late.wait_for("welcome")
    assert [m["text"] for m in welcome["chat"]] == ["Kính chào các đồng chí <b>ở xa</b>!"]
    assert welcome["chat"][0]["name"] == "Nguyễn Văn Ấn"
    with sqlite_database.session() as s:
        stored = s.scalars(select(ChatMessage)).all()
        assert [m.text for m in stored] == ["Kính chào các đồng chí <b>ở xa</b>!"]


async def test_chair_deletes_a_message_and_it_is_audited(participant, room_world, sqlite_database):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    await away.send({"type": "chat", "text": "tin nhắn gửi nhầm"})
    message_id = (await chair.wait_for("chat"))["message"]["id"]
    await away.send({"type": "delete_chat", "message_id": message_id})
    assert (await away.wait_for("error"))["code"] == "forbidden"
    await chair.send({"type": "delete_chat", "message_id": message_id})
    assert (await away.wait_for("chat_deleted"))["message_id"] == message_id
    with sqlite_database.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "chat.delete")).one()
        assert entry.before["text"] == "tin nhắn gửi nhầm" and entry.organisation_id == room_world.world.id("A")
    late = participant("away_a")
    await late.join()
    assert (await late.wait_for("welcome"))["chat"] == []


async def test_hands_queue_and_the_floor(participant, room_world, sqlite_database):
    from meetings.planning.meetings import RemoteInvite

    with sqlite_database.session() as s:
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=room_world.world.id("a2")))
    chair = participant("sec_a")
    await chair.join()
    away, member = participant("away_a"), participant("mem_a")
    await away.join()
    await member.join()
    await member.send({"type": "hand", "raised": True})
    await chair.wait_for("hands", queue=[pid(room_world, "a2")])
    await away.send({"type": "hand", "raised": True})
    await chair.wait_for("hands", queue=[pid(room_world, "a2"), pid(room_world, "a4")])
    await chair.send({"type": "give_floor", "participant": pid(room_world, "a2")})
    assert (await away.wait_for("floor"))["participant"] == pid(room_world, "a2")
    await chair.wait_for("hands", queue=[pid(room_world, "a4")])
    await away.send({"type": "give_floor", "participant": pid(room_world, "a4")})
    assert (await away.wait_for("error"))["code"] == "forbidden"


async def test_chair_asks_to_mute_mutes_and_removes(participant, room_world):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    target = pid(room_world, "a4")
    await chair.send({"type": "ask_mute", "participant": target})
    assert (await away.wait_for("mute_request"))["by"] == pid(room_world, "a1")
    await chair.send({"type": "mute", "participant": target})
    await away.wait_for("muted")
    update = await chair.wait_for("participant")
    assert update["participant"]["id"] == target and update["participant"]["audio"] is False
    again = participant("away_a")
    await again.login()
    earlier_token = await again.join_token()  # taken before the removal: the room refuses it
    await chair.send({"type": "remove", "participant": target, "reason": "Không giữ trật tự"})
    assert (await away.wait_for("removed"))["reason"] == "Không giữ trật tự"
    assert await away.wait_closed() == 4403
    assert (await chair.wait_for("left"))["reason"] == "removed"
    await again.connect(earlier_token)
    assert (await again.wait_for("error"))["code"] == "removed"
    # And no new join token either (the page then offers no way back in).
    refused = await again.http.get(f"/meetings/{room_world.meeting_id}/room/token", params={"device": "member"})
    assert refused.status_code == 403 and refused.json()["error"] == "removed"


async def test_reconnection_resumes_the_same_participant(participant, room_world, sqlite_database):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    first = await away.wait_for("welcome")
    await away.drop()
    update = await chair.wait_for("participant")
    assert update["participant"]["status"] == "reconnecting"
    away.messages.clear()
    chair.messages.clear()
    await away.connect()
    welcome = await away.wait_for("welcome")
    assert welcome["resumed"] is True and welcome["you"] == first["you"]
    assert welcome["session"] != first["session"]
    rejoined = await chair.wait_for("joined")
    assert rejoined["participant"]["id"] == first["you"] and rejoined["participant"]["status"] == "connected"
    assert not [m for m in chair.messages if m["type"] == "left"]
    assert len([p for p in welcome["participants"] if p["id"] == first["you"]]) == 1
    with sqlite_database.session() as s:
        mine = [i for i in presence.intervals(s, room_world.meeting_id) if i.member_id == room_world.world.id("a4")]
        kinds = [e.kind.value for e in presence.events(s, room_world.meeting_id) if e.member_id == room_world.world.id("a4")]
    assert len(mine) == 1 and mine[0].left_at is None
    assert kinds == ["join", "reconnect"]


async def test_a_reconnection_that_names_its_session_keeps_it_and_its_peer_connection(participant, room_world):
    """A cut that only cost the socket: the page comes back on a new socket with its session
    and its peer connection, which carried media through, is not torn down on either side."""
    chair = participant("sec_a", media=True)
    await chair.join()
    away = participant("away_a", media=True)
    await away.join()
    first = await away.wait_for("welcome")
    await chair.wait_media([first["you"]])
    link = chair.links[first["you"]]
    await away.drop()
    assert (await chair.wait_for("participant"))["participant"]["status"] == "reconnecting"
    chair.messages.clear()
    away.messages.clear()
    await away.connect(session=first["session"])
    welcome = await away.wait_for("welcome")
    assert welcome["resumed"] is True and welcome["session"] == first["session"]
    update = await chair.wait_until(lambda m: m["type"] == "participant"
                                    and m["participant"]["status"] == "connected")
    assert update["participant"]["session"] == first["session"]
    # No "joined": the chair keeps the same connection, and media keeps coming over it.
    assert not [m for m in chair.messages if m["type"] in ("joined", "renegotiate", "offer")]
    assert chair.links[first["you"]] is link and link.pc.connectionState == "connected"
    video = link.frames["video"]
    await chair.wait_media([first["you"]], frames=video + 20)
    assert chair.links[first["you"]] is link and link.frames["video"] >= video + 20
    # A session that is not the current one (an old tab, a guess) gets a new session.
    await away.drop()
    await away.connect(session="deadbeef")
    welcome = await away.wait_until(lambda m: m["type"] == "welcome" and m["session"] != first["session"])
    assert welcome["resumed"] is True


async def test_the_welcome_carries_the_token_for_the_next_connection(participant, room_world, room_settings):
    from realtime.tokens import read_join_token

    away = participant("away_a")
    await away.join()
    first = await away.wait_for("welcome")
    grant = read_join_token(room_settings.secret_key, first["join_token"])
    assert (grant.meeting_id, grant.member_id, grant.device) == (room_world.meeting_id, room_world.world.id("a4"), "member")
    await away.drop()
    away.messages.clear()
    await away.connect(token=first["join_token"], session=first["session"])  # no token request
    welcome = await away.wait_for("welcome")
    assert welcome["resumed"] and welcome["session"] == first["session"]


async def test_a_client_that_pings_then_falls_silent_is_shown_reconnecting(participant, room_world, monkeypatch):
    from realtime import signalling

    monkeypatch.setattr(signalling, "HEARTBEAT_TIMEOUT", 1.0)
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    await away.send({"type": "ping", "t": 1})
    await away.wait_for("pong")
    chair.messages.clear()
    # The away member's uplink dies: its socket stays open, nothing more arrives.
    assert await away.wait_closed(timeout=5) == 4408
    update = await chair.wait_for("participant", timeout=3)
    assert update["participant"]["status"] == "reconnecting"


async def test_closed_tab_ends_presence_after_the_grace_period(participant, room_world, sqlite_database):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    await away.drop()
    left = await chair.wait_for("left", timeout=5)  # grace is 1 s in these tests
    assert left["participant"] == pid(room_world, "a4") and left["reason"] == "timeout"
    with sqlite_database.session() as s:
        (interval,) = [i for i in presence.intervals(s, room_world.meeting_id) if i.member_id == room_world.world.id("a4")]
    assert interval.left_at is not None and interval.end_reason == "timeout"
    assert (interval.left_at - interval.joined_at).total_seconds() < 5


async def test_second_tab_replaces_the_first(participant, room_world):
    first = participant("away_a")
    await first.join()
    second = participant("away_a")
    await second.join()
    assert (await first.wait_for("replaced"))["message"]
    assert await first.wait_closed() == 4000
    welcome = await second.wait_for("welcome")
    assert welcome["resumed"] is True
    assert [p["id"] for p in welcome["participants"]] == [pid(room_world, "a4")]


async def test_explicit_leave_is_persisted(participant, room_world, sqlite_database):
    away = participant("away_a")
    await away.join()
    await away.send({"type": "leave"})
    await away.wait_closed()
    with sqlite_database.session() as s:
        (interval,) = presence.intervals(s, room_world.meeting_id)
        assert interval.left_at is not None and interval.end_reason == "leave"


async def test_the_join_screen_hello_is_not_being_in_the_room(participant, room_world, sqlite_database):
    """A warm hello (the page on the join screen, issue 15) is answered with ``ready`` and
    nothing else: no presence, nobody told, no room messages; ``join`` then enters."""
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.login()
    await away.connect(warm=True)
    ready = await away.wait_for("ready")
    assert ready["relay_session"] is None and isinstance(ready["ice_servers"], list)  # a mesh: nothing prepared
    await away.send({"type": "ping", "t": 7})
    assert (await away.wait_for("pong"))["t"] == 7
    await away.send({"type": "chat", "text": "xin chào"})
    assert (await away.wait_for("error"))["code"] == "not_joined"
    await asyncio.sleep(0.3)
    assert [m for m in chair.messages if m["type"] in ("joined", "chat") or (m["type"] == "lobby" and m["waiting"])] == []
    assert not any(m["type"] == "welcome" for m in away.messages)
    with sqlite_database.session() as s:
        assert [i.member_id for i in presence.intervals(s, room_world.meeting_id)] == [room_world.world.id("a1")]

    await away.send({"type": "join", "audio": True, "video": False})
    welcome = await away.wait_for("welcome")
    assert welcome["you"] == pid(room_world, "a4")
    joined = await chair.wait_for("joined")
    assert joined["participant"]["id"] == pid(room_world, "a4") and joined["participant"]["video"] is False
    with sqlite_database.session() as s:
        assert {i.member_id for i in presence.intervals(s, room_world.meeting_id)} == {
            room_world.world.id("a1"), room_world.world.id("a4")}


async def test_the_join_screen_hello_still_waits_in_the_lobby(lobby_room, room_world):
    chair, away = lobby_room
    await away.connect(warm=True)
    await away.wait_for("ready")
    await asyncio.sleep(0.2)
    assert not any(m["type"] == "lobby" and m["waiting"] for m in chair.messages)
    await away.send({"type": "join"})
    assert "chờ bí thư" in (await away.wait_for("waiting"))["message"]
    await chair.wait_for("lobby", waiting=[{"id": pid(room_world, "a4"), "name": "Phạm Thị Hường"}])


async def test_lobby_holds_members_until_admitted(lobby_room, room_world):
    chair, away = lobby_room
    await away.connect()
    assert "chờ bí thư" in (await away.wait_for("waiting"))["message"]
    await chair.wait_for("lobby", waiting=[{"id": pid(room_world, "a4"), "name": "Phạm Thị Hường"}])
    # Waiting is not being in the room: the chair does not see the member among the participants.
    assert pid(room_world, "a4") not in chair.participants
    await away.send({"type": "hand", "raised": True})
    assert (await away.wait_for("error"))["code"] == "waiting"
    assert not any(m["type"] == "welcome" for m in away.messages)
    assert not any(m["type"] == "hands" for m in chair.messages)
    await chair.send({"type": "admit", "participant": pid(room_world, "a4")})
    assert (await away.wait_for("welcome"))["you"] == pid(room_world, "a4")
    assert (await chair.wait_for("joined"))["participant"]["id"] == pid(room_world, "a4")
    await chair.wait_for("lobby", waiting=[])


async def test_hall_device_is_for_the_secretary(participant, room_world, server, room_settings):
    hall = participant("sec_a", device="hall")
    await hall.join()
    welcome = await hall.wait_for("welcome")
    assert welcome["you"] == "hall"
    assert [p for p in welcome["participants"] if p["id"] == "hall"][0]["name"] == "Hội trường"
    member = participant("away_a", device="hall")
    await member.login()
    r = await member.http.get(f"/meetings/{room_world.meeting_id}/room/token", params={"device": "hall"})
    assert r.status_code == 403
    await member.connect(token=forged_token(room_settings, room_world, "away_a", room_world.meeting_id, "a4",
                                            device="hall"))
    assert "thiết bị hội trường" in (await member.wait_for("error"))["message"]


async def test_speaking_and_media_state_reach_the_others(participant, room_world):
    chair = participant("sec_a")
    await chair.join()
    away = participant("away_a")
    await away.join()
    a4 = pid(room_world, "a4")
    await away.send({"type": "speaking", "speaking": True})
    update = await chair.wait_for("participant")
    assert update["participant"]["id"] == a4 and update["participant"]["speaking"] is True
    chair.messages.clear()
    await away.send({"type": "media", "audio": True, "video": False, "audio_only": True})
    update = await chair.wait_for("participant")
    assert update["participant"]["audio_only"] is True and update["participant"]["video"] is False
    chair.messages.clear()
    await away.send({"type": "quality", "level": "poor", "rtt_ms": 900, "loss_pct": 12.5})
    assert (await chair.wait_for("participant"))["participant"]["quality"] == "poor"


async def test_server_restart_loses_no_presence(room_settings, sqlite_database, room_world, server_port):
    """The process stops mid-meeting; participants reconnect to the new one: nothing already
    reported is lost, the stretch before ends when the old process last knew them there (its
    shutdown), and a quick return is one stretch of presence (decision 6)."""
    from tests.support.room_fixtures import running_server
    from tests.support.rtc_client import RoomClient
    from tests.support.world import PASSWORD

    a4 = room_world.world.id("a4")
    async with running_server(room_settings, sqlite_database, server_port) as base:
        chair = RoomClient(base, "sec_a", PASSWORD, room_world.meeting_id, media=False)
        away = RoomClient(base, "away_a", PASSWORD, room_world.meeting_id, media=False)
        await chair.join()
        await away.join()
    with sqlite_database.session() as s:
        before = [(i.member_id, i.joined_at) for i in presence.intervals(s, room_world.meeting_id)]
    assert len(before) == 2
    async with running_server(room_settings, sqlite_database, server_port):
        for client, key in ((chair, "a1"), (away, "a4")):
            client.messages.clear()
            await client.connect()
            assert (await client.wait_for("welcome"))["you"] == pid(room_world, key)
        with sqlite_database.session() as s:
            after = presence.intervals(s, room_world.meeting_id)
            kinds = [e.kind.value for e in presence.events(s, room_world.meeting_id) if e.member_id == a4]
        assert [(i.member_id, i.joined_at) for i in after[:2]] == before
        assert [i.end_reason for i in after[:2]] == ["lost", "lost"] and all(i.left_at is None for i in after[2:])
        assert kinds == ["join", "lost", "join"]
        with sqlite_database.session() as s:
            from meetings.foundation.base import utcnow
            from meetings.proceedings import attendance

            meeting = s.get(Meeting, room_world.meeting_id)
            online = attendance.online_presence(s, meeting, utcnow())
        joined = dict(before)
        assert len(online[a4].spans) == 1 and online[a4].first_join >= joined[a4]
        await chair.close()
        await away.close()


async def test_votes_in_the_room(participant, room_world, sqlite_database):
    from meetings.foundation.actors import Actor
    from meetings.organisation import accounts
    from meetings.organisation.members import Member
    from meetings.planning.meetings import RemoteInvite
    from tests.support.world import PASSWORD

    with sqlite_database.session() as s:
        a3 = s.get(Member, room_world.world.id("a3"))  # probationary
        account = accounts.create_account(s, Actor.system("t"), username="a3", password=PASSWORD,
                                          display_name=a3.full_name, member=a3, must_change_password=False)
        room_world.world.accounts["a3"] = account.id
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=a3.id))
    chair, away, trainee = participant("sec_a"), participant("away_a"), participant("a3")
    for client in (chair, away, trainee):
        await client.join()
    await away.send({"type": "open_vote", "title": "Không được mở", "kind": "open"})
    assert (await away.wait_for("error"))["code"] == "forbidden"
    await chair.send({"type": "open_vote", "title": "Thông qua nghị quyết tháng 12", "kind": "secret"})
    opened = (await away.wait_for("vote"))["motion"]
    assert opened["status"] == "open" and opened["kind"] == "secret"
    await away.send({"type": "cast", "motion_id": opened["id"], "choice": "agree"})
    assert (await away.wait_for("vote_cast"))["choice"] is None  # secret: not echoed
    await away.send({"type": "cast", "motion_id": opened["id"], "choice": "disagree"})
    assert "một lần" in (await away.wait_for("error", code="not_allowed"))["message"]
    await trainee.send({"type": "cast", "motion_id": opened["id"], "choice": "agree"})
    assert "dự bị" in (await trainee.wait_for("error", code="not_allowed"))["message"]
    chair.messages.clear()
    await chair.send({"type": "close_vote", "motion_id": opened["id"]})
    closed = (await chair.wait_for("vote"))["motion"]
    assert closed["status"] == "closed" and closed["result"]["agree"] == 1 and closed["result"]["denominator"] == 3
    assert closed["result"]["passed"] is False and closed["result"]["votes_needed"] == 2
    away.messages.clear()
    await away.send({"type": "cast", "motion_id": opened["id"], "choice": "agree"})
    assert "đã kết thúc" in (await away.wait_for("error", code="not_allowed"))["message"]
    late = participant("away_a")
    await late.join()
    welcome = await late.wait_for("welcome")
    assert welcome["vote"]["status"] == "closed" and welcome["voted"] is False


async def test_a_secret_ballot_held_by_the_room_survives_reconnection_and_closes_from_the_votes_page(
        participant, room_world):
    import re

    chair, away = participant("sec_a"), participant("away_a")
    for client in (chair, away):
        await client.join()
    await chair.send({"type": "open_vote", "title": "Bỏ phiếu kín", "kind": "secret"})
    motion = (await away.wait_for("vote"))["motion"]["id"]
    await away.send({"type": "cast", "motion_id": motion, "choice": "disagree", "pad": ""})
    await away.wait_for("vote_cast")
    # Another connection of the same member (a reload, a second phone): the box knows they voted.
    again = participant("away_a")
    await again.join()
    welcome = await again.wait_for("welcome")
    assert welcome["voted"] is True and welcome["vote"]["voted"] == 1
    await again.send({"type": "cast", "motion_id": motion, "choice": "agree"})
    assert "một lần" in (await again.wait_for("error", code="not_allowed"))["message"]
    # The secretary closes it from the votes page: the room empties its box.
    page = await chair.http.get(f"/meetings/{room_world.meeting_id}/votes")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = await chair.http.post(f"/meetings/{room_world.meeting_id}/votes/{motion}/close", data={"csrf_token": token})
    assert r.status_code == 303
    closed = await again.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed")
    assert (closed["motion"]["result"]["agree"], closed["motion"]["result"]["disagree"]) == (0, 1)
