"""The access epoch: one counter that moves whenever anything a room access decision reads
changes, in the same transaction as the change.

``room_access`` reads roles, accounts, members and their periods and memberships, the tree,
the meeting (its status and remote list), pilot approvals and removals from the room. The join
path may keep decisions it made (``realtime.admission``) as long as the epoch has not moved:
one primary-key read tells every server process whether its copies still hold. Changes are
rare next to joins (a province's rush is thousands of joins a minute; roles and periods change
a few times a day), so a change simply invalidates every kept decision.

The counter moves on every flush that writes a watched row through the ORM, and on ORM bulk
statements against a watched table.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import Integer, event, select, update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, UOWTransaction, mapped_column

from ..foundation.base import Base, rows_changed
from ..organisation.accounts import Account, RoleGrant
from ..organisation.members import Member, MemberPeriod, Membership
from ..organisation.organisations import Organisation, OrgParentLink
from ..planning.meetings import Meeting, PilotApproval, RemoteInvite
from .presence import PresenceEvent, PresenceEventKind

#: Rows a room access decision depends on.
WATCHED: tuple[type[Any], ...] = (Account, RoleGrant, Member, MemberPeriod, Membership, Organisation, OrgParentLink,
                                  Meeting, PilotApproval, RemoteInvite)
ROW_ID = 1


class AccessEpoch(Base):
    __tablename__ = "access_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


def current(session: Session) -> int:
    """The epoch now (0 before anything moved it)."""
    return session.scalar(select(AccessEpoch.value).where(AccessEpoch.id == ROW_ID)) or 0


def bump(session: Session) -> None:
    """Invalidate every kept access decision, with this transaction."""
    moved = rows_changed(session, update(AccessEpoch).where(AccessEpoch.id == ROW_ID)
                         .values(value=AccessEpoch.value + 1)
                         .execution_options(synchronize_session=False))
    if not moved:
        session.add(AccessEpoch(id=ROW_ID, value=1))


def _changes_access(obj: object) -> bool:
    if isinstance(obj, WATCHED):
        return True
    return isinstance(obj, PresenceEvent) and obj.kind == PresenceEventKind.REMOVED


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, context: UOWTransaction, instances: object) -> None:
    if any(_changes_access(obj) for obj in chain(session.new, session.dirty, session.deleted)):
        bump(session)


@event.listens_for(Session, "do_orm_execute")
def _on_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, WATCHED):
        bump(state.session)
