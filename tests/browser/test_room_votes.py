"""The room's vote card in Chromium: the chair opens a vote, an official member votes with a
tap, a probationary member follows it without any button, and everyone sees the result.

Marked ``netns`` (the room's pages set up real WebRTC media): scripts/test runs it inside a
loopback-only namespace.
"""

from __future__ import annotations

import pytest

from meetings.foundation.actors import Actor
from meetings.organisation import accounts
from meetings.organisation.members import Member
from meetings.planning.meetings import RemoteInvite
from tests.browser.test_room import browser, open_room  # noqa: F401 (a fixture)
from tests.support.world import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

VOTE_SHOWN = "(title) => !document.querySelector('#vote').hidden && document.querySelector('#vote-title').textContent === title"


@pytest.fixture
def trainee(room_world):  # type: ignore[no-untyped-def]
    """a3, the probationary member of cell A, with an account and invited to join remotely."""
    with room_world.db.session() as s:
        a3 = s.get(Member, room_world.world.id("a3"))
        accounts.create_account(s, Actor.system("test"), username="trainee_a", password=PASSWORD,
                                display_name=a3.full_name, member=a3, must_change_password=False)
        s.add(RemoteInvite(meeting_id=room_world.meeting_id, member_id=a3.id))
    return "trainee_a"


async def test_only_members_who_may_vote_get_the_buttons(browser, server, room_world, trainee):  # noqa: F811
    chair = await open_room(browser, server, room_world.meeting_id, "sec_a")
    away = await open_room(browser, server, room_world.meeting_id, "away_a")
    learner = await open_room(browser, server, room_world.meeting_id, trainee)
    chair.on("dialog", lambda dialog: dialog.accept())  # "Kết thúc biểu quyết và chốt kết quả?"

    title = "Thông qua nghị quyết tháng 12"
    await chair.click("#btn-chat")  # the panel, then its "Số người dự" tab with the vote form
    await chair.click("[data-tab=counts]")
    await chair.fill("#vote-form input[name=title]", title)
    await chair.click("#vote-form button[type=submit]")
    for page in (chair, away, learner):
        await page.wait_for_function(VOTE_SHOWN, arg=title, timeout=15000)

    # The official member can vote; the probationary one is told why there is nothing to press.
    assert await away.is_visible("#vote-buttons")
    assert not await learner.is_visible("#vote-buttons")
    assert "không có quyền biểu quyết" in await learner.text_content("#vote-status")

    await away.click("#vote-buttons [data-choice=agree]")
    await away.wait_for_function("() => document.querySelector('#vote-status').textContent.startsWith('Bạn đã biểu quyết')",
                                 timeout=15000)
    assert not await away.is_visible("#vote-buttons")  # once

    await chair.click("#vote-close")
    for page in (chair, away, learner):
        await page.wait_for_function(
            "() => document.querySelector('#vote-status').textContent.startsWith('Đã kết thúc. Kết quả: tán thành 1/')",
            timeout=15000)
        assert not await page.is_visible("#vote-buttons")
    for page in (chair, away, learner):
        await page.context.close()
