"""One roster per meeting, in-person and online together, and the counts the minutes state.

The roster is a snapshot of the cell's electorate on the meeting's day
(``meetings.eligibility``): who was expected, who may vote, who is exempt or transferred out
(listed apart and not counted absent). Online presence from the room fills in online
attendance (decision 6: connection intervals less than 2 minutes apart are one; present is
suggested when connected for at least half the meeting, *partial* otherwise); the secretary
marks in-person members, confirms or corrects online marks and records each absence with or
without reason. After the meeting closes, a change needs a reason and is kept as an amendment.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

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
from ..foundation.base import LOCAL_TZ, Base, JSONType, UTCDateTime, json_safe, utcnow, value_enum
from ..foundation.errors import NotFound, ValidationError
from ..foundation.text import clean_text, name_sort_key
from ..organisation.accounts import Account
from ..organisation.eligibility import Standing, agree_votes_needed, electorate
from ..organisation.members import MemberStatus
from ..planning.absences import AbsenceDecided, AbsenceRequest, AbsenceStatus
from ..planning.meetings import Meeting, MeetingStatus
from .presence import PresenceInterval

#: Reconnections within this gap count as one connection (decision 6).
RECONNECT_GAP = dt.timedelta(minutes=2)




@dataclass(frozen=True)
class AbsenceCountChanged:
    """A mark or a dues record made or unmade an absence (or an unpaid month) of the member
    in ``year``: the three-month count may have changed (``evaluation.three_month``)."""

    member_id: int
    year: int
    now: dt.datetime

@dataclass(frozen=True)
class RosterChanged:
    """Lines were added to a meeting's roster, or a line's mark changed: the cell-month
    figures follow (``evaluation.monthly``)."""

    meeting_id: int


class AttendanceStatus(enum.StrEnum):
    UNMARKED = "unmarked"
    PRESENT = "present"
    ABSENT = "absent"
    #: Exempt, transferred out or suspended and not attending: listed apart, never absent.
    NOT_EXPECTED = "not_expected"

    @property
    def label(self) -> str:
        return {"unmarked": "Chưa điểm danh", "present": "Có mặt", "absent": "Vắng mặt",
                "not_expected": "Không phải dự"}[self.value]


class AttendanceMode(enum.StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"

    @property
    def label(self) -> str:
        return {"in_person": "Trực tiếp", "online": "Trực tuyến"}[self.value]


class ReasonCategory(enum.StrEnum):
    """What a good reason was (decision 9: a category plus free text)."""

    ILLNESS = "illness"
    WORK = "work"
    FAMILY = "family"
    AWAY = "away"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"illness": "Ốm đau, điều trị", "work": "Công tác, nhiệm vụ đột xuất", "family": "Việc gia đình",
                "away": "Đi làm ăn xa", "other": "Lý do khác"}[self.value]


class AttendanceRecord(Base):
    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("meeting_id", "member_id"),
        # Covers the audit's per-meeting aggregate (meetings.regularity), so that a province's
        # roster lines are read from the index alone.
        Index("ix_attendance_figures", "meeting_id", "expected", "status", "mode", "excused", "away"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    # Snapshot of the member's standing on the meeting's day.
    full_name: Mapped[str] = mapped_column(String(200))
    standing: Mapped[Standing] = mapped_column(value_enum(Standing))
    member_status: Mapped[MemberStatus] = mapped_column(value_enum(MemberStatus))
    expected: Mapped[bool] = mapped_column(Boolean)
    may_vote: Mapped[bool] = mapped_column(Boolean)
    in_roll: Mapped[bool] = mapped_column(Boolean)
    away: Mapped[bool] = mapped_column(Boolean, default=False)
    # The mark.
    status: Mapped[AttendanceStatus] = mapped_column(value_enum(AttendanceStatus), default=AttendanceStatus.UNMARKED)
    mode: Mapped[AttendanceMode | None] = mapped_column(value_enum(AttendanceMode))
    excused: Mapped[bool | None] = mapped_column(Boolean)
    reason_category: Mapped[ReasonCategory | None] = mapped_column(value_enum(ReasonCategory))
    reason_text: Mapped[str | None] = mapped_column(Text)
    #: "secretary", "online" (suggested from the room), "absence_request"
    source: Mapped[str | None] = mapped_column(String(20))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Online presence, filled from the room's intervals.
    online_minutes: Mapped[int | None] = mapped_column(Integer)
    first_join: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_leave: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: "present" or "partial" (decision 6), while the secretary has not decided.
    suggestion: Mapped[str | None] = mapped_column(String(10))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def counted_present(self) -> bool:
        return self.status == AttendanceStatus.PRESENT


class AttendanceAmendment(Base):
    """A correction made after the meeting closed: what changed, why, by whom."""

    __tablename__ = "attendance_amendments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("attendance.id"), index=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    before: Mapped[dict[str, Any]] = mapped_column(JSONType)
    after: Mapped[dict[str, Any]] = mapped_column(JSONType)
    reason: Mapped[str] = mapped_column(Text)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DuesStatus(enum.StrEnum):
    PAID_AT_MEETING = "paid_at_meeting"
    PAID_TRANSFER = "paid_transfer"
    UNPAID = "unpaid"

    @property
    def label(self) -> str:
        return {"paid_at_meeting": "Đã đóng tại buổi họp", "paid_transfer": "Đã đóng (chuyển khoản)",
                "unpaid": "Chưa đóng"}[self.value]


class DuesRecord(Base):
    """A member's party dues for one month (đảng phí), recorded with that month's roster."""

    __tablename__ = "dues"
    __table_args__ = (UniqueConstraint("member_id", "month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: The first day of the month the dues are for.
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    status: Mapped[DuesStatus] = mapped_column(value_enum(DuesStatus))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


RECORD_FIELDS = ("status", "mode", "excused", "reason_category", "reason_text", "source", "confirmed")


# --------------------------------------------------------------------------- roster


def roster(session: Session, meeting: Meeting) -> list[AttendanceRecord]:
    """The meeting's roster, created from the electorate on first use (idempotent). Members
    whose absence request was approved are absent with that reason until the secretary
    decides otherwise."""
    records = list(session.scalars(select(AttendanceRecord).where(AttendanceRecord.meeting_id == meeting.id)))
    if meeting.status in (MeetingStatus.CLOSED, MeetingStatus.CANCELLED) and records:
        return _sorted(records)
    changed = _create_missing(session, meeting, records)
    changed += _apply_absence_requests(session, meeting, records)
    session.flush()
    if changed:
        events.publish(session, RosterChanged(meeting.id))
    return _sorted(records)


def current_roster(session: Session, meeting: Meeting, now: dt.datetime) -> list[AttendanceRecord]:
    """The roster as every page, export and count shows it — the marking page, its CSV, the
    room's live counts, the votes page and the minutes: once the meeting has begun, with the
    room's online presence folded in, so that no view can show an older state than another."""
    if meeting.status in (MeetingStatus.SCHEDULED, MeetingStatus.CANCELLED):
        return roster(session, meeting)
    return refresh_online(session, meeting, now)


def _apply_absence_requests(session: Session, meeting: Meeting, records: list[AttendanceRecord]) -> int:
    applied = 0
    approved = {r.member_id: r for r in session.scalars(
        select(AbsenceRequest).where(AbsenceRequest.meeting_id == meeting.id,
                                     AbsenceRequest.status == AbsenceStatus.APPROVED))}
    for record in records:
        request = approved.get(record.member_id)
        if request is None or not record.expected:
            continue
        if record.source is None or (record.source == "absence_request" and record.status != AttendanceStatus.ABSENT):
            record.status = AttendanceStatus.ABSENT
            record.excused = True
            record.reason_category = ReasonCategory.OTHER
            record.reason_text = request.reason
            record.source = "absence_request"
            record.confirmed = True
            record.decided_by_id = request.decided_by_id
            record.decided_at = request.decided_at
            applied += 1
    return applied


def _create_missing(session: Session, meeting: Meeting, records: list[AttendanceRecord]) -> int:
    known = {r.member_id for r in records}
    created = 0
    for entry in electorate(session, meeting.cell_id, meeting.local_date):
        if entry.member_id in known:
            continue
        record = AttendanceRecord(
            meeting_id=meeting.id, member_id=entry.member_id, full_name=entry.full_name, standing=entry.standing,
            member_status=entry.status, expected=entry.expected, may_vote=entry.may_vote, in_roll=entry.in_roll,
            away=entry.away,
            status=AttendanceStatus.UNMARKED if entry.expected else AttendanceStatus.NOT_EXPECTED,
        )
        session.add(record)
        records.append(record)
        created += 1
    return created


def _sorted(records: list[AttendanceRecord]) -> list[AttendanceRecord]:
    return sorted(records, key=lambda r: (name_sort_key(r.full_name), r.member_id))


def record_of(session: Session, meeting: Meeting, member_id: int) -> AttendanceRecord:
    # The member's line when it exists; the whole roster (from the electorate) only when not —
    # marking a meeting line by line must not recompute the electorate for every line.
    found = session.scalar(select(AttendanceRecord).where(AttendanceRecord.meeting_id == meeting.id,
                                                          AttendanceRecord.member_id == member_id))
    if found is not None:
        return found
    for record in roster(session, meeting):
        if record.member_id == member_id:
            return record
    raise NotFound("Đảng viên này không có trong danh sách điểm danh của cuộc họp.")


# --------------------------------------------------------------------------- online presence


@dataclass(frozen=True)
class OnlineSummary:
    minutes: int
    seconds: float
    first_join: dt.datetime
    last_leave: dt.datetime
    #: Merged connection spans (reconnections within 2 minutes joined).
    spans: tuple[tuple[dt.datetime, dt.datetime], ...]
    #: Connected right now (an interval still open), while the meeting is open.
    connected: bool = False


def merge_intervals(spans: list[tuple[dt.datetime, dt.datetime]], gap: dt.timedelta = RECONNECT_GAP
                    ) -> list[tuple[dt.datetime, dt.datetime]]:
    """Union of intervals, joining those less than ``gap`` apart (decision 6)."""
    merged: list[list[dt.datetime]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def meeting_window(meeting: Meeting, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = meeting.opened_at or meeting.starts_at
    end = meeting.closed_at or max(now, start)
    return start, end


def online_presence(session: Session, meeting: Meeting, now: dt.datetime) -> dict[int, OnlineSummary]:
    """Connected time per member within the meeting, from the room's presence intervals."""
    start, end = meeting_window(meeting, now)
    live = meeting.status == MeetingStatus.OPEN
    spans: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    connected: set[int] = set()
    for interval in session.scalars(
        select(PresenceInterval).where(PresenceInterval.meeting_id == meeting.id, PresenceInterval.member_id.is_not(None),
                                       PresenceInterval.device == "member")
    ):
        member_id = interval.member_id
        assert member_id is not None, "the query asks for members' intervals"
        if live and interval.left_at is None:
            connected.add(member_id)
        left = interval.left_at or (now if meeting.closed_at is None else interval.last_seen_at)
        a, b = max(interval.joined_at, start), min(left, end)
        if b > a or (live and interval.left_at is None):
            spans.setdefault(member_id, []).append((a, max(a, b)))
    result: dict[int, OnlineSummary] = {}
    for member_id, member_spans in spans.items():
        merged = merge_intervals(member_spans)
        seconds = sum((b - a).total_seconds() for a, b in merged)
        result[member_id] = OnlineSummary(minutes=int(seconds // 60), seconds=seconds, first_join=merged[0][0],
                                          last_leave=merged[-1][1], spans=tuple(merged),
                                          connected=member_id in connected)
    return result


def suggestion_for(summary: OnlineSummary, meeting: Meeting, now: dt.datetime) -> str:
    """Present when connected for at least half of the meeting; partial otherwise. While the
    meeting is open, a member connected right now is present from the moment they join: the
    live counts (D, the votes a resolution needs, decisions 5–8) must include them. Once it
    has closed, only the half-the-meeting rule decides (decision 6)."""
    if summary.connected:
        return "present"
    start, end = meeting_window(meeting, now)
    length = max((end - start).total_seconds(), 1.0)
    return "present" if summary.seconds * 2 >= length else "partial"


def refresh_online(session: Session, meeting: Meeting, now: dt.datetime) -> list[AttendanceRecord]:
    """Copy online presence into the roster. A mark the secretary made is never overwritten;
    an unmarked member connected long enough is marked present online, pending confirmation."""
    records = roster(session, meeting)
    online = online_presence(session, meeting, now)
    marks_changed = False
    for record in records:
        summary = online.get(record.member_id)
        if summary is None:
            continue
        record.online_minutes = summary.minutes
        record.first_join = summary.first_join
        record.last_leave = summary.last_leave
        record.suggestion = suggestion_for(summary, meeting, now)
        # An absence request the member then did not need (they joined after all) gives way
        # to their presence; a secretary's mark never does.
        if record.source in (None, "online", "absence_request"):
            was = (record.status, record.mode)
            if record.suggestion == "present":
                record.status = AttendanceStatus.PRESENT
                record.mode = AttendanceMode.ONLINE
                record.source = "online"
            elif record.source == "online":
                record.status = AttendanceStatus.UNMARKED if record.expected else AttendanceStatus.NOT_EXPECTED
                record.mode = None
                record.source = None
            marks_changed = marks_changed or was != (record.status, record.mode)
    session.flush()
    if marks_changed:
        events.publish(session, RosterChanged(meeting.id))
    return records


# --------------------------------------------------------------------------- marking


@dataclass
class Mark:
    status: AttendanceStatus | str
    mode: AttendanceMode | str | None = None
    excused: bool | None = None
    reason_category: ReasonCategory | str | None = None
    reason_text: str | None = None

    def validate(self, record: AttendanceRecord) -> dict[str, object]:
        try:
            status = AttendanceStatus(self.status)
        except ValueError:
            raise ValidationError("Trạng thái điểm danh không hợp lệ.") from None
        values: dict[str, object] = {"status": status, "mode": None, "excused": None, "reason_category": None,
                                     "reason_text": None}
        if status == AttendanceStatus.PRESENT:
            try:
                values["mode"] = AttendanceMode(self.mode or AttendanceMode.IN_PERSON)
            except ValueError:
                raise ValidationError("Hình thức tham dự không hợp lệ.") from None
            if record.standing == Standing.SUSPENDED:
                raise ValidationError("Đảng viên đang bị đình chỉ sinh hoạt không dự họp.")
        elif status == AttendanceStatus.ABSENT:
            if not record.expected:
                raise ValidationError(
                    f"{record.full_name} ({record.standing.label}) không phải dự họp nên không ghi vắng mặt.")
            if self.excused is None:
                raise ValidationError("Hãy ghi rõ vắng có lý do hay không có lý do.")
            values["excused"] = bool(self.excused)
            if self.excused:
                try:
                    values["reason_category"] = ReasonCategory(self.reason_category or "")
                except ValueError:
                    raise ValidationError("Vắng có lý do: hãy chọn loại lý do.") from None
                text = clean_text(self.reason_text)
                if not text:
                    raise ValidationError("Vắng có lý do: hãy ghi lý do cụ thể.")
                values["reason_text"] = text[:500]
        elif status == AttendanceStatus.NOT_EXPECTED:
            if record.expected:
                raise ValidationError(f"{record.full_name} phải dự họp; hãy ghi có mặt hoặc vắng mặt.")
        elif status == AttendanceStatus.UNMARKED and not record.expected:
            values["status"] = AttendanceStatus.NOT_EXPECTED
        return values


def decided(record: AttendanceRecord) -> bool:
    """Someone has decided this line: the secretary marked or confirmed it, or an approved
    absence request excused it. A suggestion from the room, or nothing yet, is undecided."""
    return record.confirmed and record.status not in (AttendanceStatus.UNMARKED, AttendanceStatus.NOT_EXPECTED)


def mark(session: Session, actor: Actor, meeting: Meeting, member_id: int, data: Mark, *, now: dt.datetime,
         amendment_reason: str | None = None, source: str = "secretary") -> AttendanceRecord:
    """The secretary's decision on one member. Final, and audit-logged.

    Only changing an earlier decision after the meeting closed is an amendment, which needs a
    reason and is kept with what changed. A first decision — an unmarked member, a suggestion
    from the room confirmed as it is or decided otherwise, a "partial" presence — is never an
    amendment, whenever it is made. Saving a decided line unchanged (the dues beside it) is
    no decision at all."""
    if meeting.status == MeetingStatus.CANCELLED:
        raise ValidationError("Cuộc họp đã bị hủy, không điểm danh.")
    if meeting.status == MeetingStatus.SCHEDULED and data.status == AttendanceStatus.PRESENT:
        raise ValidationError("Cuộc họp chưa bắt đầu, chưa thể ghi có mặt.")
    record = record_of(session, meeting, member_id)
    values = data.validate(record)
    changes = any(getattr(record, key) != value for key, value in values.items())
    if record.confirmed and not changes:
        return record
    amending = meeting.status == MeetingStatus.CLOSED and decided(record) and changes
    reason = clean_text(amendment_reason)
    if amending and not reason:
        raise ValidationError("Cuộc họp đã kết thúc: sửa điểm danh đã ghi phải nêu lý do điều chỉnh.")
    return _decide(session, actor, meeting, record, values, now=now, source=source,
                   amendment=reason if amending else None)


def _decide(session: Session, actor: Actor, meeting: Meeting, record: AttendanceRecord, values: dict[str, object],
            *, now: dt.datetime, source: str, amendment: str | None, action: str | None = None) -> AttendanceRecord:
    """Write a decision on one line: audit entry, amendment (with its reason) when it changes
    an earlier decision after the meeting, and the three-month recheck when it makes or
    unmakes an absence."""
    before = audit.snapshot(record, RECORD_FIELDS)
    for key, value in values.items():
        setattr(record, key, value)
    record.source = source
    record.confirmed = True
    record.decided_by_id = actor.account_id
    record.decided_at = now
    session.flush()
    after = audit.snapshot(record, RECORD_FIELDS)
    if before == after:
        return record
    if amendment is not None:
        session.add(AttendanceAmendment(record_id=record.id, meeting_id=meeting.id, before=before, after=after,
                                        reason=amendment, by_id=actor.account_id, at=now))
    audit.record(session, actor, action or ("attendance.amend" if amendment is not None else "attendance.mark"),
                 record, before, after, organisation_id=meeting.cell_id, note=amendment)
    events.publish(session, RosterChanged(meeting.id))
    if AttendanceStatus.ABSENT.value in (before["status"], after["status"]):
        # Only an absence, made or unmade, can change the three-month count.
        events.publish(session, AbsenceCountChanged(record.member_id, meeting.local_date.year, now))
    return record


def confirm_suggestions(session: Session, actor: Actor, meeting: Meeting, now: dt.datetime) -> list[str]:
    """Confirm, in one action, every online presence the room suggested as present (decision
    6: the secretary decides; these are first decisions, never amendments). "Partial"
    presences are left for the secretary to decide one by one. Returns the names confirmed."""
    if meeting.status != MeetingStatus.CLOSED:
        raise ValidationError("Xác nhận điểm danh trực tuyến sau khi cuộc họp kết thúc (trong cuộc họp, số liệu "
                              "còn thay đổi khi đảng viên vào, ra phòng họp).")
    names = []
    for record in current_roster(session, meeting, now):
        if record.source == "online" and not record.confirmed and record.status == AttendanceStatus.PRESENT:
            before = audit.snapshot(record, RECORD_FIELDS)
            record.source, record.confirmed = "secretary", True
            record.decided_by_id, record.decided_at = actor.account_id, now
            names.append((record.member_id, record.full_name, before))
    if not names:
        raise ValidationError("Không có gợi ý có mặt trực tuyến nào đang chờ xác nhận.")
    session.flush()
    audit.record(session, actor, "attendance.confirm_online", meeting,
                 {"suggested": [{"member_id": m, "name": n} for m, n, _ in names]},
                 {"confirmed": [{"member_id": m, "name": n} for m, n, _ in names]},
                 organisation_id=meeting.cell_id, entity_type="Meeting")
    return [n for _, n, _ in names]


def amendments(session: Session, meeting_id: int) -> list[AttendanceAmendment]:
    return list(session.scalars(select(AttendanceAmendment).where(AttendanceAmendment.meeting_id == meeting_id)
                                .order_by(AttendanceAmendment.id)))


def mark_label(values: dict[str, object]) -> str:
    """A line's mark in words, from a snapshot ("Có mặt trực tuyến", "Vắng có lý do: Ốm")."""
    status = values.get("status")
    if status == AttendanceStatus.PRESENT.value:
        return "Có mặt trực tuyến" if values.get("mode") == AttendanceMode.ONLINE.value else "Có mặt trực tiếp"
    if status == AttendanceStatus.ABSENT.value:
        if values.get("excused"):
            return f"Vắng có lý do: {values.get('reason_text') or ''}".rstrip(": ")
        return "Vắng không có lý do"
    return AttendanceStatus(str(status)).label if status else "Chưa điểm danh"


@dataclass(frozen=True)
class AmendmentLine:
    """An amendment as the roster page lists it: whose line, who changed it, when, what."""

    member: str
    author: str
    at: dt.datetime
    before: str
    after: str
    reason: str


def amendment_lines(session: Session, meeting_id: int) -> list[AmendmentLine]:
    rows = session.execute(
        select(AttendanceAmendment, AttendanceRecord.full_name, Account.display_name)
        .join(AttendanceRecord, AttendanceRecord.id == AttendanceAmendment.record_id)
        .outerjoin(Account, Account.id == AttendanceAmendment.by_id)
        .where(AttendanceAmendment.meeting_id == meeting_id).order_by(AttendanceAmendment.id)
    ).all()
    return [AmendmentLine(member=name, author=author or "hệ thống", at=a.at, before=mark_label(a.before),
                          after=mark_label(a.after), reason=a.reason) for a, name, author in rows]


@events.subscribe(AbsenceDecided)
def _late_absence_decision(session: Session, event: AbsenceDecided) -> None:
    """An absence request approved once the meeting's roster exists (typically after it
    closed) reaches the roster like any decision: the member is absent with that reason
    unless they attended; an earlier "absent without reason" is amended (kept with the
    approver and the request's reason), and the three-month count is rechecked, which tells
    the secretary and the committee when a level changes (decision 9)."""
    if not event.approved:
        return
    record = session.scalar(select(AttendanceRecord).where(AttendanceRecord.meeting_id == event.meeting_id,
                                                           AttendanceRecord.member_id == event.member_id))
    meeting = session.get(Meeting, event.meeting_id)
    if record is None or meeting is None or not record.expected or record.status == AttendanceStatus.PRESENT:
        return  # no roster yet (it will read the approval when made), or the member attended
    values: dict[str, object] = {"status": AttendanceStatus.ABSENT, "mode": None, "excused": True,
                                 "reason_category": ReasonCategory.OTHER, "reason_text": event.reason[:500]}
    amendment = None
    if meeting.status == MeetingStatus.CLOSED and decided(record):
        amendment = f"Đơn xin vắng được chấp thuận sau cuộc họp ({event.at.astimezone(LOCAL_TZ):%d/%m/%Y})."
    _decide(session, event.actor, meeting, record, values, now=event.at, source="absence_request",
            amendment=amendment, action="attendance.absence_approved")


# --------------------------------------------------------------------------- counts


@dataclass
class Counts:
    """The attendance figures the minutes state (regulations §3) and the resolution rule (§4)."""

    total: int = 0
    official: int = 0
    probationary: int = 0
    attached: int = 0
    exempt: int = 0
    transferred_out: int = 0
    suspended: int = 0
    expected: int = 0
    present: int = 0
    present_official: int = 0
    present_probationary: int = 0
    present_attached: int = 0
    present_in_person: int = 0
    present_online: int = 0
    absent_excused: list[tuple[str, str]] = field(default_factory=list)
    absent_unexcused: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)
    exempt_names: list[str] = field(default_factory=list)
    transferred_names: list[str] = field(default_factory=list)
    denominator: int = 0
    votes_needed: int = 0
    voters_present: list[str] = field(default_factory=list)

    @property
    def too_few_voters(self) -> bool:
        """No resolution could pass: eligible voters present ≤ D / 2 (decision 8)."""
        return len(self.voters_present) * 2 <= self.denominator

    @property
    def attendance_rate(self) -> float | None:
        base = self.expected
        return None if base == 0 else self.present_of_expected / base

    present_of_expected: int = 0

    def as_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items()}
        data["too_few_voters"] = self.too_few_voters
        return json_safe(data)


def counts(records: list[AttendanceRecord]) -> Counts:
    c = Counts()
    for r in records:
        if r.in_roll:
            c.total += 1
            if r.member_status == MemberStatus.OFFICIAL:
                c.official += 1
            else:
                c.probationary += 1
        else:
            c.total += 1
            c.attached += 1
        if r.standing == Standing.EXEMPT:
            c.exempt += 1
            c.exempt_names.append(r.full_name)
        elif r.standing == Standing.TRANSFERRED_OUT:
            c.transferred_out += 1
            c.transferred_names.append(r.full_name)
        elif r.standing == Standing.SUSPENDED:
            c.suspended += 1
        if r.expected:
            c.expected += 1
        if r.status == AttendanceStatus.PRESENT:
            c.present += 1
            if r.expected:
                c.present_of_expected += 1
            if not r.in_roll:
                c.present_attached += 1
            elif r.member_status == MemberStatus.OFFICIAL:
                c.present_official += 1
            else:
                c.present_probationary += 1
            if r.mode == AttendanceMode.ONLINE:
                c.present_online += 1
            else:
                c.present_in_person += 1
            if r.may_vote:
                c.voters_present.append(r.full_name)
        elif r.status == AttendanceStatus.ABSENT:
            if r.excused:
                c.absent_excused.append((r.full_name, r.reason_text or ""))
            else:
                c.absent_unexcused.append(r.full_name)
        elif r.status == AttendanceStatus.UNMARKED:
            c.unmarked.append(r.full_name)
    c.denominator = denominator(records)
    c.votes_needed = agree_votes_needed(c.denominator)
    return c


def denominator(records: list[AttendanceRecord]) -> int:
    """D of decision 7 over a roster: official members, less those transferred out or
    suspended, less exempt ones who did not attend (Quy định 232-QĐ/TW §9.3.2)."""
    total = 0
    for r in records:
        if not r.in_roll or r.member_status != MemberStatus.OFFICIAL:
            continue
        if r.standing in (Standing.TRANSFERRED_OUT, Standing.SUSPENDED):
            continue
        if r.standing == Standing.EXEMPT and r.status != AttendanceStatus.PRESENT:
            continue
        total += 1
    return total


# --------------------------------------------------------------------------- dues


def record_dues(session: Session, actor: Actor, meeting: Meeting, member_id: int, status: DuesStatus | str,
                now: dt.datetime) -> DuesRecord:
    try:
        status = DuesStatus(status)
    except ValueError:
        raise ValidationError("Trạng thái đảng phí không hợp lệ.") from None
    record = record_of(session, meeting, member_id)
    if not record.in_roll:
        raise ValidationError("Đảng viên sinh hoạt tạm thời đóng đảng phí ở nơi sinh hoạt chính thức.")
    month = meeting.local_date.replace(day=1)
    dues = session.scalar(select(DuesRecord).where(DuesRecord.member_id == member_id, DuesRecord.month == month))
    before = None
    if dues is None:
        dues = DuesRecord(member_id=member_id, cell_id=meeting.cell_id, month=month, status=status,
                          meeting_id=meeting.id)
        session.add(dues)
    else:
        before = {"status": dues.status.value}
        dues.status = status
    dues.recorded_by_id = actor.account_id
    dues.recorded_at = now
    session.flush()
    if before != {"status": status.value}:
        audit.record(session, actor, "dues.record", dues, before, {"status": status.value, "month": month.isoformat()},
                     organisation_id=meeting.cell_id)
        if DuesStatus.UNPAID.value in ((before or {}).get("status"), status.value):
            events.publish(session, AbsenceCountChanged(member_id, month.year, now))
    return dues


def dues_for_month(session: Session, cell_id: int, month: dt.date) -> dict[int, DuesRecord]:
    return {d.member_id: d for d in session.scalars(
        select(DuesRecord).where(DuesRecord.cell_id == cell_id, DuesRecord.month == month.replace(day=1)))}


def history_of(session: Session, member_id: int) -> list[tuple[Meeting, AttendanceRecord]]:
    """A member's attendance across meetings, newest first (their own page)."""
    rows = session.execute(
        select(Meeting, AttendanceRecord).join(AttendanceRecord, AttendanceRecord.meeting_id == Meeting.id)
        .where(AttendanceRecord.member_id == member_id).order_by(Meeting.starts_at.desc())
    ).all()
    return [(m, r) for m, r in rows]


