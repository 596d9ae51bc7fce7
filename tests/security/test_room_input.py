"""Finding 12.8 in the room: an id past BIGINT in the WebSocket path or in a frame gets a typed
``error``, never a dropped connection; and so do values no message may carry (issue 16)."""

import pytest

from meetings.foundation.actors import Actor
from meetings.foundation.base import utcnow
from meetings.planning.meetings import Meeting
from meetings.proceedings import votes as vote_store
from tests.support.rtc_client import RoomClient
from tests.support.snapshot import stored
from tests.support.world import PASSWORD

pytestmark = pytest.mark.anyio


async def test_a_meeting_id_past_bigint_is_not_found(server, room_world):
    client = RoomClient(server, "sec_a", PASSWORD, 2**64, media=False)
    try:
        await client.login()
        # No token can name such a meeting (the token route answers 404 for it).
        assert (await client.http.get(f"/meetings/{2**64}/room/token")).status_code == 404
        await client.connect(token="x")
        assert (await client.wait_for("error"))["code"] == "auth_failed"
        assert await client.wait_closed() == 4401
    finally:
        await client.close()


async def test_ids_past_bigint_in_frames_are_malformed(participant):
    chair = participant("sec_a")
    await chair.join()
    for frame in ({"type": "delete_chat", "message_id": 2**70}, {"type": "cast", "motion_id": 2**63, "choice": "agree"},
                  {"type": "close_vote", "motion_id": -(2**64)}, {"type": "ping", "t": 1e400}):
        chair.messages.clear()
        await chair.send(frame)
        error = await chair.wait_for("error")
        assert error["code"] == "bad_message", error
    # Still connected and served.
    await chair.send({"type": "chat", "text": "Vẫn kết nối"})
    assert (await chair.wait_for("chat"))["message"]["text"] == "Vẫn kết nối"


# Values of the right type that mean nothing: each gets a typed ``error`` naming the message it
# answers, nothing is stored, and the same connection goes on being served.

VOTE_TABLES = ("motions", "open_votes", "ballots_cast", "secret_tallies", "audit_log")


def votes_stored(room_world) -> dict:
    return {name: rows for name, rows in stored(room_world.db).items() if name in VOTE_TABLES}


async def still_served(client) -> None:
    client.messages.clear()
    await client.send({"type": "ping", "t": 42})
    assert (await client.wait_for("pong"))["t"] == 42


async def test_open_vote_with_a_bad_kind_or_title_opens_nothing(participant, room_world):
    chair, away = participant("sec_a"), participant("away_a")
    for client in (chair, away):
        await client.join()
    before = votes_stored(room_world)
    for frame, code in (({"type": "open_vote", "title": "Biểu quyết", "kind": "public"}, "not_allowed"),
                        ({"type": "open_vote", "title": "   ", "kind": "open"}, "not_allowed"),
                        ({"type": "open_vote", "kind": "open"}, "bad_message"),
                        ({"type": "open_vote", "title": ["Biểu quyết"], "kind": "open"}, "bad_message"),
                        ({"type": "open_vote", "title": "Biểu quyết", "kind": None}, "bad_message")):
        chair.messages.clear()
        await chair.send(frame)
        error = await chair.wait_for("error")
        assert error["code"] == code, (frame, error)
        assert error["message"] and error["ref"] in ("open_vote", "vote"), error
        await still_served(chair)
        assert votes_stored(room_world) == before, frame
    assert not any(m["type"] == "vote" for m in away.messages)
    # The same connection still opens a vote with good values.
    await chair.send({"type": "open_vote", "title": "Thông qua nghị quyết tháng 12", "kind": "open"})
    assert (await away.wait_for("vote"))["motion"]["title"] == "Thông qua nghị quyết tháng 12"


async def test_cast_with_a_bad_choice_or_motion_stores_no_vote(participant, room_world, sqlite_database):
    with sqlite_database.session() as s:
        other = vote_store.open_motion(s, Actor.system("test"), s.get(Meeting, room_world.other_meeting_id),
                                       "Biểu quyết của chi bộ khác", "open", utcnow())
        other_id = other.id
    chair, away = participant("sec_a"), participant("away_a")
    for client in (chair, away):
        await client.join()
    await chair.send({"type": "open_vote", "title": "Thông qua nghị quyết tháng 12", "kind": "open"})
    motion = (await away.wait_for("vote"))["motion"]["id"]
    before = votes_stored(room_world)
    for frame, code in (({"type": "cast", "motion_id": motion, "choice": "maybe"}, "not_allowed"),
                        ({"type": "cast", "motion_id": motion, "choice": ""}, "not_allowed"),
                        ({"type": "cast", "motion_id": motion, "choice": 1}, "bad_message"),
                        ({"type": "cast", "motion_id": str(motion), "choice": "agree"}, "bad_message"),
                        ({"type": "cast", "motion_id": 999_999, "choice": "agree"}, "not_allowed"),
                        ({"type": "cast", "motion_id": other_id, "choice": "agree"}, "not_allowed")):
        away.messages.clear()
        await away.send(frame)
        error = await away.wait_for("error")
        assert error["code"] == code and error["ref"] == "cast", (frame, error)
        await still_served(away)
        assert votes_stored(room_world) == before, frame
    assert not any(m["type"] == "vote_cast" for m in away.messages)
    await away.send({"type": "cast", "motion_id": motion, "choice": "agree"})
    assert (await away.wait_for("vote_cast"))["choice"] == "agree"


async def test_admitting_someone_not_waiting_or_with_a_bad_answer_changes_nothing(lobby_room, room_world):
    chair, away = lobby_room
    await away.connect()
    await away.wait_for("waiting")
    a4 = f"m{room_world.world.id('a4')}"
    await chair.wait_for("lobby", waiting=[{"id": a4, "name": "Phạm Thị Hường"}])
    for frame, code in (({"type": "admit", "participant": "m999999"}, "bad_target"),
                        ({"type": "admit", "participant": chair.me}, "bad_target"),
                        ({"type": "admit", "participant": a4, "accept": "yes"}, "bad_message"),
                        ({"type": "admit", "participant": int(a4[1:])}, "bad_message")):
        chair.messages.clear()
        await chair.send(frame)
        error = await chair.wait_for("error")
        assert error["code"] == code and error["ref"] == "admit", (frame, error)
        await still_served(chair)
    # The member is still waiting, neither let in nor turned away.
    assert not any(m["type"] in ("welcome", "removed") for m in away.messages)
    assert a4 not in chair.participants
    await chair.send({"type": "admit", "participant": a4})
    assert (await away.wait_for("welcome"))["you"] == a4
    await chair.wait_for("lobby", waiting=[])


async def test_an_unknown_quality_level_is_refused_and_the_last_good_one_kept(participant, room_world):
    chair, away = participant("sec_a"), participant("away_a")
    for client in (chair, away):
        await client.join()
    a4 = f"m{room_world.world.id('a4')}"
    await away.send({"type": "quality", "level": "fair"})
    await chair.wait_until(lambda m: m["type"] == "participant" and m["participant"]["id"] == a4
                           and m["participant"]["quality"] == "fair")
    for frame in ('{"type": "quality", "level": "excellent"}', '{"type": "quality", "level": ""}',
                  '{"type": "quality", "level": "poor", "rtt_ms": "slow"}',
                  '{"type": "quality", "level": "poor", "loss_pct": NaN}',  # what a broken client may send
                  '{"type": "quality", "level": "poor", "rtt_ms": -5}',
                  '{"type": "quality", "level": "poor", "loss_pct": 250}',
                  '{"type": "quality"}'):
        away.messages.clear()
        chair.messages.clear()
        await away.send_raw(frame)
        error = await away.wait_for("error")
        assert error["code"] == "bad_message" and error["ref"] == "quality", (frame, error)
        await still_served(away)
    # Nobody was told of a change: the others still see "fair".
    await still_served(chair)
    assert not any(m["type"] == "participant" for m in chair.messages)
    await away.send({"type": "quality", "level": "poor"})
    await chair.wait_until(lambda m: m["type"] == "participant" and m["participant"]["id"] == a4
                           and m["participant"]["quality"] == "poor")
