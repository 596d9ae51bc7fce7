"""The one date of a meeting: the day it was actually held (decision 12).

A meeting counts in the month of the day it was held, everywhere — the minutes' title and
file names, the compliance grid, the audit, the yearly records and the three-month rule — and
the planned day only decides "on time" or "late" (ARCHITECTURE.md: *one date per meeting*).
The platform keeps that true by construction: ``Meeting.starts_at`` is when the meeting is
held, and every way a meeting can come to be held on another day than planned is a **move**,
made here, before anything else happens:

* :func:`move_meeting` — the secretary moves a meeting that has not been held yet;
* :func:`start_meeting` — the room is started on another day than planned: the secretary
  confirms, with a reason, and the meeting moves to now before it opens;
* :func:`record_actual_times` — a meeting held in the hall only is recorded afterwards with a
  start on another day: the same, with a reason.

**What a move records.** The new time in ``starts_at``; the day it was planned for in
``occurrence_on`` (kept from the rule, or set on the first move of a meeting added by hand),
so that on time / late is judged against the plan; the reason in ``moved_reason``; a title
that follows the new date ("… tháng 12/2026"); a SEQUENCE bump; an audit-log entry with the
times before and after and the reason. Members are told: by the notice job for a meeting
still ahead, at once (in-app) for a move made as the meeting starts.

**What a move may not do.** Give a month a second meeting of the same kind (decision 2: one
regular meeting per calendar month; the schedule keys chi ủy and thematic meetings by month
too): it is refused, naming the meeting that already holds the month. A regular meeting moved
out of its month leaves that month without one, and the preview says so before the secretary
confirms (decision 12).

**How far from the plan a start must be to count as a move.** Any other calendar day (Vietnam
time). A start at another hour of the planned day is not a move: meetings begin a little early
or late, and the day is what every record counts by.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import LOCAL_TZ
from ..foundation.errors import ValidationError
from ..foundation.text import clean_text
from . import meetings as mt
from . import notices
from .meetings import Meeting, MeetingKind, MeetingStatus
from .schedules import QUARTER_ROMAN, require_reason


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=LOCAL_TZ)


def month_holder(session: Session, meeting: Meeting, day: dt.date) -> Meeting | None:
    """Another meeting of the same kind, not cancelled, held or planned in ``day``'s month —
    the one a move there would duplicate. Extraordinary meetings never hold a month."""
    if meeting.kind == MeetingKind.EXTRAORDINARY:
        return None
    first = _month_start(day)
    return session.scalars(
        select(Meeting).where(
            Meeting.cell_id == meeting.cell_id, Meeting.kind == meeting.kind, Meeting.id != meeting.id,
            Meeting.status != MeetingStatus.CANCELLED,
            Meeting.starts_at >= _local_midnight(first), Meeting.starts_at < _local_midnight(_next_month(first)),
        ).order_by(Meeting.starts_at)
    ).first()


@dataclass(frozen=True)
class MovePreview:
    """What a move would do, shown to the secretary before they confirm."""

    meeting_id: int
    title: str
    from_day: dt.date
    to_day: dt.date
    new_title: str
    #: What the secretary should know (the month it counts for, a month left without one).
    notes: tuple[str, ...]


class MoveNeedsConfirmation(ValidationError):
    """A start on another day than planned: nothing happened; the secretary must confirm
    the move with a reason (the page shows :attr:`preview`)."""

    def __init__(self, preview: MovePreview) -> None:
        super().__init__(
            f"Cuộc họp dự kiến ngày {preview.from_day:%d/%m/%Y}. Bắt đầu vào ngày {preview.to_day:%d/%m/%Y} là dời "
            "lịch họp: hãy xác nhận và ghi lý do.", field="reason")
        self.preview = preview


def preview_move(session: Session, meeting: Meeting, new_start: dt.datetime) -> MovePreview:
    """The consequences of moving ``meeting`` to ``new_start``; refused (ValidationError)
    when the new month already has a meeting of the same kind."""
    old, new = meeting.local_date, new_start.astimezone(LOCAL_TZ).date()
    holder = month_holder(session, meeting, new)
    if holder is not None and (old.year, old.month) != (new.year, new.month):
        raise ValidationError(
            f"Tháng {new.month}/{new.year} đã có {holder.kind.label.lower()} ({holder.title}, ngày "
            f"{holder.local_date:%d/%m/%Y}): một tháng chỉ có một cuộc họp {holder.kind.label.lower()}. "
            f"Hãy họp vào ngày đã định, hoặc dời sang tháng chưa có cuộc họp.", field="starts_at")
    notes = [f"Cuộc họp được tính cho tháng {new.month}/{new.year}, tháng của ngày họp thực tế, trong biên bản, "
             "báo cáo nền nếp và hồ sơ năm của đảng viên."]
    if meeting.kind == MeetingKind.REGULAR and (old.year, old.month) != (new.year, new.month):
        notes.append(f"Tháng {old.month}/{old.year} sẽ không còn cuộc họp thường kỳ nào (trừ khi chi bộ lập "
                     "một cuộc họp khác cho tháng đó).")
    planned = meeting.occurrence_on or old
    if new > planned:
        notes.append(f"Ngày dự kiến theo lịch ({planned:%d/%m/%Y}) được giữ để đánh giá đúng hạn hay muộn.")
    return MovePreview(meeting.id, meeting.title, old, new, retitle(meeting.title, old, new), tuple(notes))


_MONTH = re.compile(r"tháng (\d{1,2})/(\d{4})")
_DAY = re.compile(r"ngày (\d{1,2})/(\d{1,2})/(\d{4})")
_QUARTER = re.compile(r"quý ([IV]+)/(\d{4})")


def retitle(title: str, old: dt.date, new: dt.date) -> str:
    """The title with the old date's month, day or quarter replaced by the new date's
    ("Sinh hoạt thường kỳ tháng 1/2027" → "… tháng 12/2026"); other text stays."""
    quarter = {v: k for k, v in QUARTER_ROMAN.items()}

    def month(m: re.Match[str]) -> str:
        same = (int(m[1]), int(m[2])) == (old.month, old.year)
        return f"tháng {new.month}/{new.year}" if same else m[0]

    def day(m: re.Match[str]) -> str:
        same = (int(m[1]), int(m[2]), int(m[3])) == (old.day, old.month, old.year)
        return f"ngày {new:%d/%m/%Y}" if same else m[0]

    def quarter_of(m: re.Match[str]) -> str:
        same = (quarter.get(m[1]), int(m[2])) == ((old.month - 1) // 3 + 1, old.year)
        return f"quý {QUARTER_ROMAN[(new.month - 1) // 3 + 1]}/{new.year}" if same else m[0]

    return _QUARTER.sub(quarter_of, _DAY.sub(day, _MONTH.sub(month, title)))


def _apply_move(session: Session, actor: Actor, meeting: Meeting, new_start: dt.datetime, reason: str, *,
                action: str, place: str | None = None) -> None:
    before = audit.snapshot(meeting, mt.MEETING_FIELDS)
    old = meeting.local_date
    meeting.occurrence_on = meeting.occurrence_on or old
    meeting.starts_at = new_start.astimezone(dt.UTC)
    meeting.title = retitle(meeting.title, old, meeting.local_date)
    if place is not None and clean_text(place):
        meeting.place = clean_text(place)
    meeting.moved_reason = reason
    meeting.touched = True
    meeting.sequence += 1
    session.flush()
    audit.record(session, actor, action, meeting, before, audit.snapshot(meeting, mt.MEETING_FIELDS), note=reason)
    mt.announce_change(session, meeting, was=old)


def move_meeting(session: Session, actor: Actor, meeting: Meeting, new_start: dt.datetime, reason: str | None,
                 *, now: dt.datetime, place: str | None = None) -> Meeting:
    """Move a meeting that has not been held to a new time ahead (its members are told by
    the notice job). A meeting whose time passed without it being held may be moved too."""
    text = require_reason(reason, "Dời lịch họp")
    if meeting.status != MeetingStatus.SCHEDULED:
        raise ValidationError(f"Không thể dời cuộc họp đang ở trạng thái “{meeting.status.label}”.")
    if new_start <= now:
        raise ValidationError("Thời gian họp mới phải ở tương lai.", field="starts_at")
    preview_move(session, meeting, new_start)
    _apply_move(session, actor, meeting, new_start, text, action="meeting.move", place=place)
    return meeting


def start_meeting(session: Session, actor: Actor, meeting: Meeting, *, now: dt.datetime,
                  reason: str | None = None) -> MovePreview | None:
    """Open the meeting in the room. On its planned day: at once. On another day: only with a
    reason (else :class:`MoveNeedsConfirmation`, nothing changed), as a move to now that the
    members are told of; refused where the month already has such a meeting. Returns the
    move's preview when it was moved."""
    if meeting.status != MeetingStatus.SCHEDULED:
        raise ValidationError(f"Không thể bắt đầu cuộc họp đang ở trạng thái “{meeting.status.label}”.")
    moved = None
    if now.astimezone(LOCAL_TZ).date() != meeting.local_date:
        moved = preview_move(session, meeting, now)
        text = clean_text(reason)
        if not text:
            raise MoveNeedsConfirmation(moved)
        if len(text) > 1000:
            raise ValidationError("Lý do quá dài (tối đa 1000 ký tự).", field="reason")
        _apply_move(session, actor, meeting, now, text, action="meeting.move_at_start")
        notices.announce_change_now(session, meeting, now)
    mt.change_status(session, actor, meeting, MeetingStatus.OPEN, now=now)
    return moved


def record_actual_times(session: Session, actor: Actor, meeting: Meeting, start: dt.datetime, end: dt.datetime,
                        *, now: dt.datetime, reason: str | None = None) -> None:
    """The secretary records when the meeting really began and ended. A recorded end closes
    the meeting through the one transition (which also ends its room). A start on another day
    than planned is a move and needs a reason; a meeting already opened in the room was held
    on the day it was opened."""
    if meeting.status == MeetingStatus.CANCELLED:
        raise ValidationError("Cuộc họp đã bị hủy.")
    if start > now:
        raise ValidationError("Giờ bắt đầu thực tế không thể ở tương lai.", field="actual_start")
    if end <= start:
        raise ValidationError("Giờ kết thúc phải sau giờ bắt đầu.", field="actual_end")
    if end > now + dt.timedelta(minutes=5):
        raise ValidationError("Giờ kết thúc thực tế không thể ở tương lai.", field="actual_end")
    if end - start > dt.timedelta(hours=12):
        raise ValidationError("Một cuộc họp không kéo dài quá 12 giờ; hãy kiểm tra lại ngày giờ.",
                              field="actual_end")
    day = start.astimezone(LOCAL_TZ).date()
    if day != meeting.local_date:
        if meeting.opened_at is not None:
            held = meeting.opened_at.astimezone(LOCAL_TZ).date()
            raise ValidationError(f"Cuộc họp đã được bắt đầu trong phòng họp ngày {held:%d/%m/%Y}: giờ thực tế "
                                  "phải thuộc ngày đó.", field="actual_start")
        text = clean_text(reason)
        if not text:
            raise ValidationError(
                f"Cuộc họp dự kiến ngày {meeting.local_date:%d/%m/%Y} nhưng giờ thực tế ghi ngày {day:%d/%m/%Y}: "
                "đây là dời lịch họp, hãy ghi lý do.", field="reason")
        preview_move(session, meeting, start)
        _apply_move(session, actor, meeting, start, text, action="meeting.move")
    before = audit.snapshot(meeting, mt.MEETING_FIELDS)
    meeting.actual_start_at, meeting.actual_end_at = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    meeting.touched = True
    session.flush()
    audit.record(session, actor, "meeting.actual_times", meeting, before, audit.snapshot(meeting, mt.MEETING_FIELDS))
    mt.announce_change(session, meeting)
    if meeting.status in (MeetingStatus.SCHEDULED, MeetingStatus.OPEN) and end <= now:
        # A meeting whose end is recorded has been held (also one held in the hall only, never
        # opened in the room): it is closed, and its roster and minutes are final from here.
        mt.change_status(session, actor, meeting, MeetingStatus.CLOSED, now=end, started_at=start)
