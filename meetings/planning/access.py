"""Access to a meeting: as visible as its cell was on the meeting's day (``organisation.scoping``
decides which cells an account reads; the dated links decide where the cell stood)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..foundation.errors import Forbidden, NotFound
from ..organisation.organisations import lineage_on
from ..organisation.scoping import Scope
from .meetings import Meeting


def reads_meeting(session: Session, scope: Scope, meeting: Meeting) -> bool:
    """The cell's own people read all its meetings; a committee's auditors and admins read the
    meetings held while the cell stood under it — after a restructure the old committee keeps
    its past, the new one does not inherit it (decision 11; ``Scope.reads_as_of``)."""
    if scope.readable is None or meeting.cell_id in scope.own_cells:
        return True
    return scope.reads_as_of(meeting.cell_id, lineage_on(session, meeting.cell_id, meeting.local_date))


def audits_meeting(session: Session, scope: Scope, meeting: Meeting) -> bool:
    """The meeting's oversight pages: its cell's managers, or a committee whose auditor or
    admin grant covered the cell on the meeting's day (``Scope.audits_as_of``)."""
    return scope.audits_as_of(meeting.cell_id, lineage_on(session, meeting.cell_id, meeting.local_date))


def access_meeting(session: Session, scope: Scope, meeting_id: int, *, manage: bool = False) -> Meeting:
    """A meeting is as visible as its cell was on its day: members read, the secretary manages."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or not reads_meeting(session, scope, meeting):
        raise NotFound()
    if manage and not scope.can_manage(meeting.cell_id):
        raise Forbidden()
    return meeting
