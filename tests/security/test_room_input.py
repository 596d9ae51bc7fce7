"""Finding 12.8 in the room: an id past BIGINT in the WebSocket path or in a frame gets a typed
``error``, never a dropped connection."""

import pytest

from tests.support.rtc_client import RoomClient
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
