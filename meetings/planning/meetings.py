"""Meetings of a cell: kinds, lifecycle and the online-participation settings they carry.

Schedules (rules and generated meetings, notices, calendars) build on this module; the live
room reads a meeting's status and online settings through it. A meeting keeps the cell it
belongs to and, as ``supervisor_id``, the committee the cell stood under when it was
scheduled, so a later restructure of the tree never rewrites where a meeting was held.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit, events
from ..foundation.actors import Actor
from ..foundation.base import LOCAL_TZ, Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import NotFound, ValidationError
from ..organisation.organisations import Organisation, OrgKind


class MeetingKind(enum.StrEnum):
    REGULAR = "regular"
    THEMATIC = "thematic"
    EXTRAORDINARY = "extraordinary"
    COMMITTEE = "committee"

    @property
    def label(self) -> str:
        return MEETING_KIND_LABELS[self]


MEETING_KIND_LABELS = {
    MeetingKind.REGULAR: "Sinh hoạt thường kỳ",
    MeetingKind.THEMATIC: "Sinh hoạt chuyên đề",
    MeetingKind.EXTRAORDINARY: "Họp bất thường",
    MeetingKind.COMMITTEE: "Họp chi ủy",
}


class MeetingStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"  # in progress: the room accepts participants
    CLOSED = "closed"  # ended; attendance and minutes are finalised from here
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "scheduled": "Đã lên lịch",
            "open": "Đang họp",
            "closed": "Đã kết thúc",
            "cancelled": "Đã hủy",
        }[self.value]


#: Legal status changes; anything else is a programming or user error (ValidationError).
#: Scheduled → closed is a meeting held in the hall only, never opened in the room, whose
#: start and end the secretary records afterwards (``planning.dates.record_actual_times``).
TRANSITIONS = {
    MeetingStatus.SCHEDULED: {MeetingStatus.OPEN, MeetingStatus.CLOSED, MeetingStatus.CANCELLED},
    MeetingStatus.OPEN: {MeetingStatus.CLOSED},
    MeetingStatus.CLOSED: set(),
    MeetingStatus.CANCELLED: set(),
}


class Meeting(Base):
    __tablename__ = "meetings"
    #: Roll-ups over a subtree walk each cell's meetings of a year (meetings.compliance).
    __table_args__ = (Index("ix_meetings_cell_id_starts_at", "cell_id", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: The committee supervising the cell when the meeting was scheduled.
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[MeetingKind] = mapped_column(value_enum(MeetingKind))
    title: Mapped[str] = mapped_column(String(300))
    #: Thematic meetings (and combined regular + thematic ones) have a topic.
    topic: Mapped[str | None] = mapped_column(Text)
    #: A regular meeting that also holds the quarter's thematic session (HD 42: ≥ 120 min).
    combined_thematic: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the meeting is held: the planned time until then; a start (or a recorded start) on
    #: another day moves it there (``planning.dates``). Its local day is the meeting's one date,
    #: which every record counts by (decision 12); the rule's day stays in ``occurrence_on``.
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    expected_minutes: Mapped[int] = mapped_column(Integer, default=120)
    place: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[MeetingStatus] = mapped_column(value_enum(MeetingStatus), default=MeetingStatus.SCHEDULED, index=True)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_reason: Mapped[str | None] = mapped_column(Text)
    #: Remote participation is open for this meeting (only in cells approved for the pilot).
    remote_open: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Remote participants wait in a lobby until the secretary admits them.
    lobby: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Stable calendar identity; SEQUENCE grows with every change members are told about.
    uid: Mapped[str] = mapped_column(String(80), unique=True, default=lambda: f"{uuid.uuid4()}@chibo")
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # --- schedules (meetings/schedules.py, notices.py) ---
    #: The cell's rule this meeting was generated from, and the day it was planned for (the
    #: rule's day, or the day first set for a meeting added by hand and moved since): the day
    #: "on time" and "late" are judged against, and nothing else.
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_rules.id"), index=True)
    occurrence_on: Mapped[dt.date | None] = mapped_column(Date)
    #: Edited, moved or cancelled by hand: a rule change leaves it alone.
    touched: Mapped[bool] = mapped_column(Boolean, default=False)
    moved_reason: Mapped[str | None] = mapped_column(Text)
    #: Start and end as the secretary recorded them (HD 42 durations are measured on these).
    actual_start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    actual_end_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The SEQUENCE members were last notified of, and when (None: not announced yet).
    announced_sequence: Mapped[int | None] = mapped_column(Integer)
    announced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def local_start(self) -> dt.datetime:
        return self.starts_at.astimezone(LOCAL_TZ)

    @property
    def local_date(self) -> dt.date:
        return self.local_start.date()

    @property
    def is_over(self) -> bool:
        """Closed in the room, or its end recorded by the secretary."""
        return self.status == MeetingStatus.CLOSED or self.actual_end_at is not None

    @property
    def ends_at(self) -> dt.datetime:
        return self.starts_at + dt.timedelta(minutes=self.expected_minutes)

    @property
    def duration_minutes(self) -> int | None:
        """Recorded actual times first; otherwise the room's open and close."""
        if self.actual_start_at and self.actual_end_at:
            return int((self.actual_end_at - self.actual_start_at).total_seconds() // 60)
        if self.opened_at and self.closed_at:
            return int((self.closed_at - self.opened_at).total_seconds() // 60)
        return None


class PilotApproval(Base):
    """A cell's approval for the online pilot (Hướng dẫn 03-HD/TW, 27/12/2022)."""

    __tablename__ = "pilot_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    decision_number: Mapped[str] = mapped_column(String(100))
    decided_on: Mapped[dt.date] = mapped_column()
    approving_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    approving_body: Mapped[str] = mapped_column(String(300))
    valid_from: Mapped[dt.date] = mapped_column()
    valid_to: Mapped[dt.date | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def covers(self, on: dt.date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


class RemoteInvite(Base):
    """A member the secretary allowed to join one meeting remotely, beyond the away members."""

    __tablename__ = "meeting_remote_invites"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


MEETING_FIELDS = (
    "cell_id", "kind", "title", "topic", "combined_thematic", "starts_at", "expected_minutes", "place",
    "status", "opened_at", "closed_at", "cancelled_reason", "remote_open", "lobby", "sequence",
    "moved_reason", "actual_start_at", "actual_end_at",
)


def get_meeting(session: Session, meeting_id: int) -> Meeting:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound()
    return meeting


def create_meeting(
    session: Session,
    actor: Actor,
    cell: Organisation,
    *,
    kind: MeetingKind,
    starts_at: dt.datetime,
    title: str | None = None,
    expected_minutes: int = 120,
    place: str | None = None,
    topic: str | None = None,
    combined_thematic: bool = False,
    remote_open: bool = False,
) -> Meeting:
    if cell.kind != OrgKind.CELL:
        raise ValidationError("Cuộc họp phải thuộc một chi bộ.")
    if kind == MeetingKind.THEMATIC and not (topic or "").strip():
        raise ValidationError("Sinh hoạt chuyên đề cần có chuyên đề.", field="topic")
    if not 15 <= expected_minutes <= 600:
        raise ValidationError("Thời lượng dự kiến phải từ 15 đến 600 phút.", field="expected_minutes")
    local = starts_at.astimezone(LOCAL_TZ)
    meeting = Meeting(
        cell_id=cell.id,
        supervisor_id=cell.parent_id,
        kind=kind,
        title=(title or f"{kind.label} tháng {local.month}/{local.year}").strip(),
        topic=(topic or None),
        combined_thematic=combined_thematic and kind == MeetingKind.REGULAR,
        starts_at=starts_at,
        expected_minutes=expected_minutes,
        place=place,
        remote_open=remote_open,
    )
    session.add(meeting)
    session.flush()
    audit.record(session, actor, "meeting.create", meeting, None, audit.snapshot(meeting, MEETING_FIELDS))
    announce_change(session, meeting)
    return meeting


@dataclass(frozen=True)
class MeetingChanged:
    """A meeting was created, moved, opened, closed, cancelled, re-planned, edited or deleted:
    what its cell's months show may have changed (``evaluation.monthly`` keeps the cell-month
    figures). ``months`` are the first days of the local months it was in, before and after."""

    cell_id: int
    months: tuple[dt.date, ...]
    kind: MeetingKind


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def announce_change(session: Session, meeting: Meeting, *, was: dt.date | None = None) -> None:
    """Publish :class:`MeetingChanged` for ``meeting`` (``was``: its local day before a move).
    Every writer of a meeting's date, status, kind, actual times or existence calls this, in
    its transaction."""
    months = {month_of(meeting.local_date)}
    if was is not None:
        months.add(month_of(was))
    events.publish(session, MeetingChanged(meeting.cell_id, tuple(sorted(months)), meeting.kind))


@dataclass(frozen=True)
class MeetingEnded:
    """A meeting was closed (in the room, or by recording its end): whoever runs its room
    ends it once the transaction commits (``app.room_closing``)."""

    meeting_id: int
    at: dt.datetime


def change_status(session: Session, actor: Actor, meeting: Meeting, to: MeetingStatus, *, now: dt.datetime,
                  reason: str | None = None, started_at: dt.datetime | None = None) -> None:
    """Open, close or cancel a meeting — the one transition every path goes through (closing
    also ends the meeting's room: ``MeetingEnded``); an illegal transition says which it was.

    Users start a meeting through ``planning.dates.start_meeting``, which first moves a
    meeting started on another day than planned (decision 12: the day it was held is its one
    date). ``started_at`` is the recorded start of a meeting closed without having been
    opened in the room (held in the hall only)."""
    if to not in TRANSITIONS[meeting.status]:
        raise ValidationError(
            f"Không thể chuyển cuộc họp từ “{meeting.status.label}” sang “{to.label}”."
        )
    if to == MeetingStatus.CANCELLED and not (reason or "").strip():
        raise ValidationError("Hủy cuộc họp phải ghi rõ lý do.", field="reason")
    if meeting.status == MeetingStatus.SCHEDULED and to == MeetingStatus.CLOSED and started_at is None:
        raise ValidationError("Cuộc họp chưa bắt đầu trong phòng họp: hãy ghi thời gian họp thực tế (bắt đầu và "
                              "kết thúc) để ghi nhận cuộc họp đã họp tại hội trường.")
    before = audit.snapshot(meeting, MEETING_FIELDS)
    meeting.status = to
    if to == MeetingStatus.OPEN:
        meeting.opened_at = now
    elif to == MeetingStatus.CLOSED:
        meeting.opened_at = meeting.opened_at or started_at
        meeting.closed_at = now
    elif to == MeetingStatus.CANCELLED:
        meeting.cancelled_reason = reason
        meeting.sequence += 1
    session.flush()
    audit.record(session, actor, f"meeting.{to.value}", meeting, before, audit.snapshot(meeting, MEETING_FIELDS),
                 organisation_id=meeting.cell_id, note=reason)
    announce_change(session, meeting)
    if to == MeetingStatus.CLOSED:
        events.publish(session, MeetingEnded(meeting.id, now))


def pilot_approval(session: Session, cell_id: int, on: dt.date) -> PilotApproval | None:
    for approval in session.scalars(
        select(PilotApproval).where(PilotApproval.cell_id == cell_id).order_by(PilotApproval.valid_from.desc())
    ):
        if approval.covers(on):
            return approval
    return None


def remote_invites(session: Session, meeting_id: int) -> set[int]:
    return set(session.scalars(select(RemoteInvite.member_id).where(RemoteInvite.meeting_id == meeting_id)))
