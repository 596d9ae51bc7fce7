"""Finding 12.6: the chat limit holds per member per room, and a join token opens one socket.

The limit used to be per connection and a join token could be reused for 120 s: one member
stored 1,700 messages in 12 s by reconnecting, and a late joiner's 200-message history held
only that flood. (tests/security/test_cluster.py checks both across two server processes.)
"""

import time

import pytest
from sqlalchemy import func, select

from meetings.proceedings.chat import ChatMessage
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD

pytestmark = pytest.mark.anyio

BURST, RATE = 5, 1.0  # realtime.rooms.RoomSettings' chat allowance


def stored(room_world, member_key: str) -> int:
    with room_world.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ChatMessage)
                            .where(ChatMessage.member_id == room_world.world.id(member_key))))


async def test_reconnecting_gives_no_fresh_chat_allowance(server, room_world):
    flooder = RoomClient(server, "away_a", PASSWORD, room_world.meeting_id, media=False)
    started = time.monotonic()
    try:
        await flooder.join()
        for _ in range(8):  # eight sockets, one after the other, each with a new token
            for n in range(30):
                await flooder.send({"type": "chat", "text": f"tin nhắn {n}"})
            await flooder.wait_for("error", code="rate_limited", timeout=5)
            await flooder.drop()
            flooder.messages.clear()
            await flooder.connect()
            await flooder.wait_for("welcome")
        elapsed = time.monotonic() - started
    finally:
        await flooder.close()
    assert stored(room_world, "a4") <= BURST + RATE * elapsed + 1, elapsed


async def test_a_join_token_opens_one_socket_only(server, room_world):
    member = RoomClient(server, "away_a", PASSWORD, room_world.meeting_id, media=False)
    again = RoomClient(server, "away_a", PASSWORD, room_world.meeting_id, media=False)
    try:
        await member.login()
        token = await member.join_token()
        await member.connect(token=token)
        await member.wait_for("welcome")
        again.http.cookies = member.http.cookies  # the same browser, a second socket
        await again.connect(token=token)
        error = await again.wait_for("error")
        assert error["code"] == "auth_failed" and "đã được dùng" in error["message"]
        assert await again.wait_closed() == 4401
        # The first socket is untouched.
        await member.send({"type": "ping", "t": 1})
        await member.wait_for("pong")
    finally:
        await member.close()
        await again.close()
