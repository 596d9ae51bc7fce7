"""Absence requests (xin vắng) and the secretary's decision on them.

A member expected at a meeting of their cell may ask to be absent, with a reason, until the
meeting is over; a request filed less than ``late_hours`` before the start is accepted but
marked late. The secretary approves or rejects it with a note. An approved request makes the
absence *excused* (decision 9: an absence is excused only when the reason was accepted); the
attendance roster reads :func:`excused_member_ids`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import Boolean, ForeignKey, Integer, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit, events
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import Conflict, NotFound, ValidationError
from ..foundation.text import clean_text, optional_text
from ..organisation.eligibility import electorate
from .meetings import Meeting, MeetingStatus

#: Requests filed later than this before the start are marked late (a platform default).
LATE_HOURS = 24


class AbsenceStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return {"pending": "Chờ bí thư xem xét", "approved": "Đã chấp thuận (vắng có lý do)",
                "rejected": "Không chấp thuận"}[self.value]


class AbsenceRequest(Base):
    __tablename__ = "absence_requests"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[AbsenceStatus] = mapped_column(
        value_enum(AbsenceStatus),
        default=AbsenceStatus.PENDING,
    )
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)


FIELDS = ("meeting_id", "member_id", "reason", "filed_at", "late", "status", "decided_by_id", "decided_at",
          "decision_note")


def file_request(session: Session, actor: Actor, meeting: Meeting, member_id: int | None, reason: str | None, *,
                 now: dt.datetime, late_hours: int = LATE_HOURS) -> AbsenceRequest:
    if member_id is None:
        raise ValidationError("Tài khoản của bạn không gắn với đảng viên nào nên không thể xin vắng.")
    text = clean_text(reason)
    if not text:
        raise ValidationError("Cần ghi lý do xin vắng.", field="reason")
    if len(text) > 1000:
        raise ValidationError("Lý do xin vắng quá dài (tối đa 1000 ký tự).", field="reason")
    entry = electorate(session, meeting.cell_id, meeting.local_date).get(member_id)
    if entry is None:
        raise ValidationError("Bạn chỉ xin vắng được cuộc họp của chi bộ mình sinh hoạt.")
    if meeting.status == MeetingStatus.CANCELLED:
        raise ValidationError("Cuộc họp đã bị hủy, không cần xin vắng.")
    if meeting.is_over:
        raise ValidationError("Cuộc họp đã kết thúc, không thể xin vắng nữa. Hãy trao đổi trực tiếp với bí thư chi bộ.")
    if not entry.expected:
        raise ValidationError(f"Bạn đang trong thời gian “{entry.standing.label}”, không phải dự cuộc họp này "
                              "nên không cần xin vắng.")
    existing = session.scalar(select(AbsenceRequest).where(AbsenceRequest.meeting_id == meeting.id,
                                                           AbsenceRequest.member_id == member_id))
    if existing is not None:
        raise Conflict("Bạn đã gửi đơn xin vắng cho cuộc họp này.")
    request = AbsenceRequest(meeting_id=meeting.id, member_id=member_id, reason=text, filed_at=now,
                             late=now > meeting.starts_at - dt.timedelta(hours=late_hours),
                             status=AbsenceStatus.PENDING)
    session.add(request)
    session.flush()
    audit.record(session, actor, "absence.file", request, None, audit.snapshot(request, FIELDS),
                 organisation_id=meeting.cell_id)
    return request


@dataclass(frozen=True)
class AbsenceDecided:
    """The secretary decided an absence request: a roster that already exists (the meeting
    has begun or closed) takes the decision in (``proceedings.attendance``)."""

    meeting_id: int
    member_id: int
    approved: bool
    reason: str
    actor: Actor
    at: dt.datetime


def decide(session: Session, actor: Actor, request: AbsenceRequest, meeting: Meeting, *, approve: bool,
           note: str | None, now: dt.datetime) -> None:
    note_text = optional_text(note)
    if not approve and not note_text:
        raise ValidationError("Khi không chấp thuận đơn xin vắng, cần ghi rõ lý do.", field="note")
    if request.status != AbsenceStatus.PENDING and meeting.is_over:
        raise ValidationError("Cuộc họp đã kết thúc; quyết định về đơn xin vắng đã được ghi nhận.")
    before = audit.snapshot(request, FIELDS)
    request.status = AbsenceStatus.APPROVED if approve else AbsenceStatus.REJECTED
    request.decided_by_id, request.decided_at, request.decision_note = actor.account_id, now, note_text
    session.flush()
    audit.record(session, actor, f"absence.{'approve' if approve else 'reject'}", request, before,
                 audit.snapshot(request, FIELDS), organisation_id=meeting.cell_id, note=note_text)
    events.publish(session, AbsenceDecided(meeting.id, request.member_id, approve, request.reason, actor, now))


def get_request(session: Session, request_id: int) -> AbsenceRequest:
    request = session.get(AbsenceRequest, request_id)
    if request is None:
        raise NotFound()
    return request


def requests_for(session: Session, meeting_id: int) -> list[AbsenceRequest]:
    return list(session.scalars(
        select(AbsenceRequest).where(AbsenceRequest.meeting_id == meeting_id).order_by(AbsenceRequest.filed_at)
    ))


def request_of(session: Session, meeting_id: int, member_id: int | None) -> AbsenceRequest | None:
    if member_id is None:
        return None
    return session.scalar(select(AbsenceRequest).where(AbsenceRequest.meeting_id == meeting_id,
                                                       AbsenceRequest.member_id == member_id))


def excused_member_ids(session: Session, meeting_id: int) -> set[int]:
    """Members whose absence from the meeting is excused by an approved request."""
    return set(session.scalars(select(AbsenceRequest.member_id).where(
        AbsenceRequest.meeting_id == meeting_id, AbsenceRequest.status == AbsenceStatus.APPROVED)))
