"""Every way a meeting ends also ends its room.

The domain closes a meeting through one transition (``planning.meetings.change_status``),
whether the secretary presses "Kết thúc cuộc họp" in the room or records the meeting's end
on its page; that transition publishes ``MeetingEnded``. This handler notes the meeting on the
session; once the request's transaction has committed, the view layer (``app.web``) calls
:func:`end_rooms`, which closes the room wherever it lives (every participant's leave is
written, the sockets are told and closed) and then closes any presence interval still open
at the time its member was last seen. A transaction that rolls back ends nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from meetings.foundation import events
from meetings.planning.meetings import MeetingEnded
from meetings.proceedings import presence

_ENDED = "chibo.ended_meetings"


@events.subscribe(MeetingEnded)
def _note_ended(session: Session, event: MeetingEnded) -> None:
    session.info.setdefault(_ENDED, []).append(event.meeting_id)


def take_ended(session: Session) -> list[int]:
    """The meetings this session closed (each once), forgetting them."""
    return list(dict.fromkeys(session.info.pop(_ENDED, [])))


async def end_rooms(state: Any, meeting_ids: list[int]) -> None:
    """After the commit: close each meeting's room, then any interval left open."""
    hub, db = state.rooms, state.db
    for meeting_id in meeting_ids:
        await hub.close_room(meeting_id)
        await db.run(lambda s, m=meeting_id: presence.close_stale(s, m))
