"""Access to a meeting: as visible as its cell (``organisation.scoping`` decides which cells)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..foundation.errors import Forbidden, NotFound
from ..organisation.scoping import Scope
from .meetings import Meeting


def access_meeting(session: Session, scope: Scope, meeting_id: int, *, manage: bool = False) -> Meeting:
    """A meeting is as visible as its cell: members read, the secretary manages."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or not scope.can_read(meeting.cell_id):
        raise NotFound()
    if manage and not scope.can_manage(meeting.cell_id):
        raise Forbidden()
    return meeting
