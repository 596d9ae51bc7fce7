"""Online presence in a meeting room, persisted as it happens.

Each stretch of connection is a ``PresenceInterval`` (opened on join, closed on leave or when
the reconnection grace period runs out); every join, leave and reconnect is also kept as a
``PresenceEvent``. The room writes through these functions before it tells anyone about the
change, so a server restart loses nothing already reported.

**Crashes.** While connected, ``last_seen_at`` is refreshed (the room's heartbeat,
``ROOM_HEARTBEAT_SECONDS``). A process that dies leaves its intervals open; the process that
next runs the meeting's room closes them first, at the last moment the dead one knew the
connection alive (:func:`close_orphaned`), so the time the server was down is never credited
as presence: a member who reconnects opens a new interval, and decision 6's two-minute rule
decides whether the two are one stretch. A removal from the meeting is a ``removed`` event,
written before the member is told, and read back by a room that starts afresh
(:func:`removed_from`), so a restart does not readmit anyone.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation.base import Base, UTCDateTime, value_enum


class PresenceEventKind(enum.StrEnum):
    JOIN = "join"
    RECONNECT = "reconnect"
    LEAVE = "leave"
    TIMEOUT = "timeout"
    REMOVED = "removed"
    #: The process serving the room died; the interval ends at the last heartbeat.
    LOST = "lost"


class PresenceInterval(Base):
    __tablename__ = "presence_intervals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    #: None for the hall device (it stands for the people in the room, not for one member).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    #: "member" or "hall"
    device: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(16))


class PresenceEvent(Base):
    __tablename__ = "presence_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    device: Mapped[str] = mapped_column(String(16))
    kind: Mapped[PresenceEventKind] = mapped_column(
        value_enum(PresenceEventKind, 16)
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


def _open_interval(session: Session, meeting_id: int, member_id: int | None, account_id: int | None,
                   device: str) -> PresenceInterval | None:
    stmt = select(PresenceInterval).where(
        PresenceInterval.meeting_id == meeting_id,
        PresenceInterval.device == device,
        PresenceInterval.left_at.is_(None),
    )
    if member_id is not None:
        stmt = stmt.where(PresenceInterval.member_id == member_id)
    else:
        stmt = stmt.where(PresenceInterval.account_id == account_id)
    return session.scalars(stmt.order_by(PresenceInterval.id.desc())).first()


def record_join(session: Session, meeting_id: int, member_id: int | None, account_id: int | None, device: str,
                at: dt.datetime) -> PresenceInterval:
    """A connection arrived: continue the open interval (a reconnection) or open a new one."""
    interval = _open_interval(session, meeting_id, member_id, account_id, device)
    if interval is not None:
        interval.last_seen_at = at
        kind = PresenceEventKind.RECONNECT
    else:
        interval = PresenceInterval(meeting_id=meeting_id, member_id=member_id, account_id=account_id,
                                    device=device, joined_at=at, last_seen_at=at)
        session.add(interval)
        kind = PresenceEventKind.JOIN
    session.add(PresenceEvent(meeting_id=meeting_id, member_id=member_id, device=device, kind=kind, at=at))
    session.flush()
    return interval


def record_seen(session: Session, interval_ids: list[int], at: dt.datetime) -> None:
    if interval_ids:
        session.execute(
            update(PresenceInterval)
            .where(PresenceInterval.id.in_(interval_ids), PresenceInterval.left_at.is_(None))
            .values(last_seen_at=at)
        )


def record_leave(session: Session, meeting_id: int, member_id: int | None, account_id: int | None, device: str,
                 at: dt.datetime, kind: PresenceEventKind = PresenceEventKind.LEAVE) -> None:
    """The participant left (or timed out, or was removed) at ``at``: close their open interval."""
    interval = _open_interval(session, meeting_id, member_id, account_id, device)
    if interval is not None:
        interval.left_at = max(at, interval.joined_at)
        interval.last_seen_at = interval.left_at
        interval.end_reason = kind.value
    session.add(PresenceEvent(meeting_id=meeting_id, member_id=member_id, device=device, kind=kind, at=at))
    session.flush()


def close_stale(session: Session, meeting_id: int | None = None) -> int:
    """Close intervals a crashed process left open, at the last time each was seen."""
    stmt = select(PresenceInterval).where(PresenceInterval.left_at.is_(None))
    if meeting_id is not None:
        stmt = stmt.where(PresenceInterval.meeting_id == meeting_id)
    count = 0
    for interval in session.scalars(stmt):
        interval.left_at = interval.last_seen_at
        interval.end_reason = PresenceEventKind.TIMEOUT.value
        count += 1
    session.flush()
    return count


def close_orphaned(session: Session, meeting_id: int) -> int:
    """Before a room starts in this process: close the meeting's intervals a dead process
    left open, at each one's last heartbeat, and note the loss (see the module docstring)."""
    count = 0
    for interval in session.scalars(select(PresenceInterval).where(PresenceInterval.meeting_id == meeting_id,
                                                                   PresenceInterval.left_at.is_(None))):
        interval.left_at = interval.last_seen_at
        interval.end_reason = PresenceEventKind.LOST.value
        session.add(PresenceEvent(meeting_id=meeting_id, member_id=interval.member_id, device=interval.device,
                                  kind=PresenceEventKind.LOST, at=interval.last_seen_at))
        count += 1
    session.flush()
    return count


def removed_from(session: Session, meeting_id: int) -> set[tuple[int | None, str]]:
    """(member id, device) of everyone removed from the meeting's room."""
    return {(member_id, device) for member_id, device in session.execute(
        select(PresenceEvent.member_id, PresenceEvent.device).where(
            PresenceEvent.meeting_id == meeting_id, PresenceEvent.kind == PresenceEventKind.REMOVED))}


def intervals(session: Session, meeting_id: int) -> list[PresenceInterval]:
    return list(
        session.scalars(
            select(PresenceInterval).where(PresenceInterval.meeting_id == meeting_id)
            .order_by(PresenceInterval.joined_at, PresenceInterval.id)
        )
    )


def events(session: Session, meeting_id: int) -> list[PresenceEvent]:
    return list(
        session.scalars(
            select(PresenceEvent).where(PresenceEvent.meeting_id == meeting_id).order_by(PresenceEvent.id)
        )
    )
