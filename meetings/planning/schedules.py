"""A cell's meeting rules and the meetings generated from them.

Cadence (shared/domain/cases.md, decision 2; Điều lệ Đảng art. 24, Hướng dẫn 12-HD/BTCTW of
06/7/2018 and Hướng dẫn 42-HD/BTCTW of 28/10/2025): one regular meeting per calendar month,
at least one thematic meeting per quarter (possibly held together with the regular one), and a
chi ủy meeting before each regular meeting in cells that have a chi ủy. Extraordinary meetings
are created by hand and never count toward the month.

Rules are RFC 5545 recurrence rules (python-dateutil's ``rrule``) evaluated in
Asia/Ho_Chi_Minh time: "ngày 5 hằng tháng" is ``FREQ=MONTHLY;BYMONTHDAY=5``, "thứ Bảy đầu tiên"
is ``FREQ=MONTHLY;BYDAY=+1SA``. Meetings are generated twelve months ahead. A meeting is keyed
by (kind, month of its occurrence), so a month never gets two regular meetings; when a rule
changes only *future, untouched* meetings follow it — past ones and those the secretary edited,
moved or cancelled (``Meeting.touched``) stay as they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, overload

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr
from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import LOCAL_TZ, Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import ValidationError
from ..foundation.text import clean_text, optional_text, parse_date
from ..organisation.organisations import Organisation
from . import agenda
from . import meetings as mt
from .absences import AbsenceRequest
from .meetings import Meeting, MeetingKind, MeetingStatus, pilot_approval

MONTHS_AHEAD = 12
#: Hướng dẫn 42-HD/BTCTW (28/10/2025): a regular meeting lasts at least 90 minutes, one that
#: combines the regular and the thematic meeting at least 120; the competent committee may set
#: lower minimums for small cells (per-cell override below).
MIN_REGULAR_MINUTES = 90
MIN_COMBINED_MINUTES = 120
COMMITTEE_MINUTES = 60

WEEKDAYS = {"MO": "Thứ Hai", "TU": "Thứ Ba", "WE": "Thứ Tư", "TH": "Thứ Năm", "FR": "Thứ Sáu",
            "SA": "Thứ Bảy", "SU": "Chủ nhật"}
ORDINALS = {1: "đầu tiên", 2: "thứ hai", 3: "thứ ba", 4: "thứ tư", -1: "cuối cùng"}
QUARTER_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}



class MeetingRule(Base):
    """One recurring plan of a cell: its regular meetings, or its thematic ones."""

    __tablename__ = "meeting_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[MeetingKind] = mapped_column(value_enum(MeetingKind))
    #: RFC 5545 RRULE value (without "RRULE:"), evaluated from ``valid_from`` at ``start_time``.
    rrule: Mapped[str] = mapped_column(String(300))
    start_time: Mapped[dt.time] = mapped_column(Time)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    place: Mapped[str | None] = mapped_column(String(300))
    #: Thematic plan: the topic given to generated meetings until the secretary sets one.
    topic: Mapped[str | None] = mapped_column(Text)
    #: Thematic plan held together with the regular meeting of the months in ``rrule``.
    combined: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Regular rule of a cell with a chi ủy: its meeting comes this many days before.
    committee_days_before: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def description(self) -> str:
        return describe_rrule(self.rrule, combined=self.combined)


class CellScheduleSettings(Base):
    """Per-cell minimum durations set by the competent committee for small cells (HD 42)."""

    __tablename__ = "cell_schedule_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    min_regular_minutes: Mapped[int | None] = mapped_column(Integer)
    min_combined_minutes: Mapped[int | None] = mapped_column(Integer)
    #: The decision that set the override (number, date, committee).
    basis: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


RULE_FIELDS = ("cell_id", "kind", "rrule", "start_time", "duration_minutes", "place", "topic", "combined",
               "committee_days_before", "valid_from", "active")


# --------------------------------------------------------------------------- RRULE text


def build_rrule(pattern: str, *, monthday: int | None = None, ordinal: int | None = None,
                weekday: str | None = None, months: list[int] | None = None) -> str:
    """The RRULE for "day N of the month" or "the Nth weekday of the month"."""
    parts = ["FREQ=YEARLY", "BYMONTH=" + ",".join(str(m) for m in months)] if months else ["FREQ=MONTHLY"]
    if pattern == "monthday":
        if monthday is None or not 1 <= monthday <= 31:
            raise ValidationError("Ngày họp trong tháng phải từ 1 đến 31.", field="monthday")
        if monthday <= 28:
            parts.append(f"BYMONTHDAY={monthday}")
        else:
            # Months without that day meet on their last day: never a month without a meeting.
            parts += [f"BYMONTHDAY={monthday},-1", "BYSETPOS=1"]
    elif pattern == "weekday":
        if ordinal not in ORDINALS:
            raise ValidationError("Chọn tuần trong tháng (đầu tiên, thứ hai, thứ ba, thứ tư, cuối cùng).",
                                  field="ordinal")
        if weekday not in WEEKDAYS:
            raise ValidationError("Chọn ngày trong tuần.", field="weekday")
        parts.append(f"BYDAY={ordinal:+d}{weekday}")
    elif pattern == "months" and months:
        pass
    else:
        raise ValidationError("Cách chọn ngày họp không hợp lệ.", field="pattern")
    return ";".join(parts)


def rrule_parts(rrule: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in rrule.split(";") if "=" in part)


def describe_rrule(rrule: str, *, combined: bool = False) -> str:
    """Vietnamese wording of a rule, e.g. "Thứ Bảy đầu tiên của tháng"."""
    parts = rrule_parts(rrule)
    months = parts.get("BYMONTH")
    month_text = f"tháng {', '.join(months.split(','))}" if months else "hằng tháng"
    if combined:
        return f"Kết hợp với sinh hoạt thường kỳ {month_text}"
    if "BYMONTHDAY" in parts:
        day = parts["BYMONTHDAY"].split(",")[0]
        tail = " (tháng không có ngày này: ngày cuối tháng)" if "," in parts["BYMONTHDAY"] else ""
        return f"Ngày {day} {month_text}{tail}"
    if "BYDAY" in parts:
        byday = parts["BYDAY"]
        ordinal, weekday = int(byday[:-2] or "1"), byday[-2:]
        of = f"của {month_text}" if months else "của tháng"
        return f"{WEEKDAYS[weekday]} {ORDINALS.get(ordinal, str(ordinal))} {of}"
    return rrule


def rule_months(rule: MeetingRule) -> set[int]:
    months = rrule_parts(rule.rrule).get("BYMONTH")
    return {int(m) for m in months.split(",")} if months else set(range(1, 13))


def occurrences(rule: MeetingRule, start: dt.date, end: dt.date) -> list[dt.datetime]:
    """Local start times of ``rule`` on days ``start`` ≤ day < ``end``."""
    dtstart = dt.datetime.combine(rule.valid_from, rule.start_time, tzinfo=LOCAL_TZ)
    recurrence = rrulestr(rule.rrule, dtstart=dtstart)
    lo = dt.datetime.combine(max(start, rule.valid_from), dt.time.min, tzinfo=LOCAL_TZ)
    hi = dt.datetime.combine(end, dt.time.min, tzinfo=LOCAL_TZ)
    return [o for o in recurrence.between(lo, hi, inc=True) if o < hi]


# --------------------------------------------------------------------------- rules


@dataclass
class RuleInput:
    """The regular-meeting rule as typed in the form."""

    pattern: str = "monthday"
    monthday: str | int | None = None
    ordinal: str | int | None = None
    weekday: str | None = None
    start_time: str | dt.time = "19:30"
    duration_minutes: str | int = 120
    place: str | None = None
    committee_days_before: str | int | None = None


@dataclass
class ThematicInput:
    """The thematic plan: none, combined with a regular meeting, or a meeting of its own."""

    mode: str = "none"  # none | combined | separate
    month_of_quarter: str | int = 3
    pattern: str = "monthday"
    monthday: str | int | None = None
    ordinal: str | int | None = None
    weekday: str | None = None
    start_time: str | dt.time = "19:30"
    duration_minutes: str | int = 120
    place: str | None = None
    topic: str | None = None


@overload
def _int(value: Any, label: str, lo: int, hi: int, *, required: Literal[True] = True) -> int: ...
@overload
def _int(value: Any, label: str, lo: int, hi: int, *, required: bool) -> int | None: ...


def _int(value: Any, label: str, lo: int, hi: int, *, required: bool = True) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"{label}: không được để trống.")
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{label}: “{value}” không phải số.") from None
    if not lo <= number <= hi:
        raise ValidationError(f"{label} phải từ {lo} đến {hi}.")
    return number


def parse_time(value: str | dt.time, label: str = "Giờ bắt đầu") -> dt.time:
    if isinstance(value, dt.time):
        return value
    text = clean_text(value).replace("h", ":").replace(".", ":")
    try:
        hour, _, minute = text.partition(":")
        return dt.time(int(hour), int(minute or 0))
    except ValueError:
        raise ValidationError(f"{label}: “{value}” không hợp lệ (dạng giờ:phút, ví dụ 19:30).") from None


def _pattern_rrule(data: RuleInput | ThematicInput, months: list[int] | None = None) -> str:
    ordinal = _int(data.ordinal, "Tuần trong tháng", -1, 4, required=data.pattern == "weekday")
    return build_rrule(
        data.pattern,
        monthday=_int(data.monthday, "Ngày họp", 1, 31, required=data.pattern == "monthday"),
        ordinal=ordinal,
        weekday=(data.weekday or "").upper() or None,
        months=months,
    )


def active_rules(session: Session, cell_id: int) -> dict[MeetingKind, MeetingRule]:
    rules = session.scalars(select(MeetingRule).where(MeetingRule.cell_id == cell_id, MeetingRule.active.is_(True)))
    return {r.kind: r for r in rules}


def _put_rule(session: Session, actor: Actor, cell: Organisation, kind: MeetingKind,
              values: dict[str, Any] | None) -> None:
    current = active_rules(session, cell.id).get(kind)
    if values is None:
        if current is not None:
            before = audit.snapshot(current, RULE_FIELDS)
            current.active = False
            session.flush()
            audit.record(session, actor, "rule.remove", current, before, audit.snapshot(current, RULE_FIELDS))
        return
    if current is None:
        current = MeetingRule(cell_id=cell.id, kind=kind, active=True, **values)
        session.add(current)
        session.flush()
        audit.record(session, actor, "rule.create", current, None, audit.snapshot(current, RULE_FIELDS))
        return
    before = audit.snapshot(current, RULE_FIELDS)
    for key, value in values.items():
        setattr(current, key, value)
    session.flush()
    after = audit.snapshot(current, RULE_FIELDS)
    if after != before:
        audit.record(session, actor, "rule.update", current, before, after)


def set_rules(session: Session, actor: Actor, cell: Organisation, regular: RuleInput | None,
              thematic: ThematicInput | None, *, now: dt.datetime, valid_from: dt.date | str | None = None) -> None:
    """Save the cell's regular rule and thematic plan, then bring future meetings in step."""
    if not cell.is_cell:
        raise ValidationError("Lịch sinh hoạt chỉ đặt cho chi bộ.")
    today = now.astimezone(LOCAL_TZ).date()
    start = parse_date(valid_from, label="Áp dụng từ ngày", required=False) or today
    reg_values: dict[str, Any] | None = None
    if regular is not None:
        committee = _int(regular.committee_days_before, "Họp chi ủy trước (ngày)", 0, 14, required=False)
        reg_values = {
            "rrule": _pattern_rrule(regular),
            "start_time": parse_time(regular.start_time),
            "duration_minutes": _int(regular.duration_minutes, "Thời lượng dự kiến (phút)", 30, 480),
            "place": optional_text(regular.place),
            "topic": None,
            "combined": False,
            "committee_days_before": committee if cell.has_committee else None,
            "valid_from": start,
        }
        if cell.has_committee and committee is None:
            reg_values["committee_days_before"] = 3
    them_values = None
    if thematic is not None and thematic.mode != "none":
        moq = _int(thematic.month_of_quarter, "Tháng trong quý", 1, 3)
        months = [q * 3 + moq for q in range(4)]
        topic = optional_text(thematic.topic)
        if thematic.mode == "combined":
            if reg_values is None:
                raise ValidationError("Muốn kết hợp sinh hoạt chuyên đề với sinh hoạt thường kỳ, "
                                      "chi bộ cần có lịch sinh hoạt thường kỳ.")
            them_values = {"rrule": build_rrule("months", months=months), "start_time": reg_values["start_time"],
                           "duration_minutes": MIN_COMBINED_MINUTES, "place": None, "topic": topic,
                           "combined": True, "committee_days_before": None, "valid_from": start}
        elif thematic.mode == "separate":
            them_values = {
                "rrule": _pattern_rrule(thematic, months),
                "start_time": parse_time(thematic.start_time),
                "duration_minutes": _int(thematic.duration_minutes, "Thời lượng chuyên đề (phút)", 30, 480),
                "place": optional_text(thematic.place), "topic": topic, "combined": False,
                "committee_days_before": None, "valid_from": start,
            }
        else:
            raise ValidationError("Cách tổ chức sinh hoạt chuyên đề không hợp lệ.")
    _put_rule(session, actor, cell, MeetingKind.REGULAR, reg_values)
    _put_rule(session, actor, cell, MeetingKind.THEMATIC, them_values)
    sync_cell(session, actor, cell, now)


# --------------------------------------------------------------------------- generation


@dataclass
class Planned:
    kind: MeetingKind
    starts_at: dt.datetime
    minutes: int
    place: str | None
    title: str
    topic: str | None
    combined: bool
    rule_id: int
    occurrence_on: dt.date


def _key(kind: MeetingKind, day: dt.date) -> tuple[MeetingKind, int, int]:
    return (kind, day.year, day.month)


def default_topic(day: dt.date) -> str:
    return f"Chuyên đề quý {QUARTER_ROMAN[(day.month - 1) // 3 + 1]}/{day.year} (chưa đặt tên)"


def plan(session: Session, cell: Organisation, start: dt.date, end: dt.date) -> dict[tuple[MeetingKind, int, int], Planned]:
    """What the active rules want between ``start`` and ``end``, keyed by (kind, year, month)."""
    rules = active_rules(session, cell.id)
    regular, thematic = rules.get(MeetingKind.REGULAR), rules.get(MeetingKind.THEMATIC)
    combined_months = rule_months(thematic) if thematic and thematic.combined else set()
    wanted: dict[tuple[MeetingKind, int, int], Planned] = {}
    if regular is not None:
        for occ in occurrences(regular, start, end):
            day = occ.date()
            combined = day.month in combined_months
            assert thematic is not None or not combined
            wanted[_key(MeetingKind.REGULAR, day)] = Planned(
                MeetingKind.REGULAR, occ,
                max(regular.duration_minutes, MIN_COMBINED_MINUTES) if combined else regular.duration_minutes,
                regular.place or cell.address,
                f"Sinh hoạt thường kỳ{' kết hợp chuyên đề' if combined else ''} tháng {day.month}/{day.year}",
                ((thematic.topic if thematic else None) or default_topic(day)) if combined else None,
                combined, regular.id, day,
            )
            if cell.has_committee and regular.committee_days_before is not None:
                wanted[_key(MeetingKind.COMMITTEE, day)] = Planned(
                    MeetingKind.COMMITTEE, occ - dt.timedelta(days=regular.committee_days_before),
                    COMMITTEE_MINUTES, regular.place or cell.address,
                    f"Họp chi ủy chuẩn bị sinh hoạt tháng {day.month}/{day.year}", None, False, regular.id, day,
                )
    if thematic is not None and not thematic.combined:
        for occ in occurrences(thematic, start, end):
            day = occ.date()
            wanted[_key(MeetingKind.THEMATIC, day)] = Planned(
                MeetingKind.THEMATIC, occ, thematic.duration_minutes, thematic.place or cell.address,
                f"Sinh hoạt chuyên đề quý {QUARTER_ROMAN[(day.month - 1) // 3 + 1]}/{day.year}",
                thematic.topic or default_topic(day), False, thematic.id, day,
            )
    return wanted


def _meeting_key(meeting: Meeting) -> tuple[MeetingKind, int, int]:
    return _key(meeting.kind, meeting.occurrence_on or meeting.local_date)


CHANGED_BY_RULE = "Chi bộ thay đổi lịch sinh hoạt định kỳ."


def sync_cell(session: Session, actor: Actor, cell: Organisation, now: dt.datetime, *,
              start: dt.date | None = None, months: int = MONTHS_AHEAD) -> dict[str, int]:
    """Generate the next ``months`` of meetings and keep untouched future ones in step.

    Returns counts of created, updated and removed meetings.
    """
    today = now.astimezone(LOCAL_TZ).date()
    # The current month and the twelve after it.
    first = (start or today).replace(day=1)
    until = first + relativedelta(months=months + 1)
    wanted = plan(session, cell, first, until)
    existing = list(session.scalars(
        select(Meeting).where(
            Meeting.cell_id == cell.id,
            Meeting.starts_at >= dt.datetime.combine(first - relativedelta(months=1), dt.time.min, tzinfo=LOCAL_TZ),
        )
    ))
    by_key: dict[tuple[MeetingKind, int, int], list[Meeting]] = {}
    for meeting in existing:
        if meeting.kind == MeetingKind.EXTRAORDINARY:
            continue
        if meeting.status == MeetingStatus.CANCELLED and not meeting.touched:
            continue  # cancelled by an earlier rule change: does not hold the month
        by_key.setdefault(_meeting_key(meeting), []).append(meeting)
    counts = {"created": 0, "updated": 0, "removed": 0}
    follows = [m for ms in by_key.values() for m in ms
               if m.rule_id is not None and not m.touched and m.status == MeetingStatus.SCHEDULED and m.starts_at > now]
    for key, planned in wanted.items():
        holders = by_key.get(key, [])
        if planned.starts_at <= now:
            continue  # the month's time has passed; whatever exists stays
        follower = next((m for m in holders if m in follows), None)
        if follower is not None:
            follows.remove(follower)
            if _follow(session, actor, follower, planned):
                counts["updated"] += 1
            continue
        if holders:
            continue  # a past, edited or hand-made meeting holds this month
        _create_planned(session, actor, cell, planned)
        counts["created"] += 1
    rules = active_rules(session, cell.id)
    starts = {kind: (rule.valid_from.year, rule.valid_from.month) for kind, rule in rules.items()}
    if MeetingKind.REGULAR in starts:
        starts[MeetingKind.COMMITTEE] = starts[MeetingKind.REGULAR]
    for leftover in follows:
        key = _meeting_key(leftover)
        if key in wanted and wanted[key].starts_at <= now:
            continue
        if key[0] in starts and key[1:] < starts[key[0]]:
            continue  # before the new rule applies: the meeting stays as planned
        if key[1:] >= (until.year, until.month) and key not in wanted:
            continue  # beyond the window: leave for the next run
        _remove_generated(session, actor, leftover, now)
        counts["removed"] += 1
    session.flush()
    return counts


def _create_planned(session: Session, actor: Actor, cell: Organisation, planned: Planned) -> Meeting:
    meeting = mt.create_meeting(
        session, actor, cell, kind=planned.kind, starts_at=planned.starts_at.astimezone(dt.UTC),
        title=planned.title, expected_minutes=planned.minutes, place=planned.place, topic=planned.topic,
        combined_thematic=planned.combined,
    )
    meeting.rule_id = planned.rule_id
    meeting.occurrence_on = planned.occurrence_on
    session.flush()
    agenda.apply_template(session, meeting)
    return meeting


def _follow(session: Session, actor: Actor, meeting: Meeting, planned: Planned) -> bool:
    before = audit.snapshot(meeting, mt.MEETING_FIELDS)
    was = meeting.local_date
    new_start = planned.starts_at.astimezone(dt.UTC)
    told = meeting.starts_at != new_start or meeting.place != planned.place or \
        meeting.expected_minutes != planned.minutes
    combined_changed = meeting.combined_thematic != planned.combined
    meeting.starts_at, meeting.place, meeting.expected_minutes = new_start, planned.place, planned.minutes
    meeting.title, meeting.combined_thematic, meeting.rule_id = planned.title, planned.combined, planned.rule_id
    meeting.occurrence_on = planned.occurrence_on
    if planned.topic and (meeting.topic is None or meeting.topic.endswith("(chưa đặt tên)")):
        meeting.topic = planned.topic
    if not planned.combined and meeting.kind == MeetingKind.REGULAR:
        meeting.topic = None
    if told:
        meeting.sequence += 1
        meeting.moved_reason = CHANGED_BY_RULE
    session.flush()
    if combined_changed:
        agenda.apply_template(session, meeting)
    after = audit.snapshot(meeting, mt.MEETING_FIELDS)
    if after == before:
        return False
    audit.record(session, actor, "meeting.follow_rule", meeting, before, after, note=CHANGED_BY_RULE)
    mt.announce_change(session, meeting, was=was)
    return True


def _remove_generated(session: Session, actor: Actor, meeting: Meeting, now: dt.datetime) -> None:
    """A generated meeting the rules no longer want: deleted if nobody was told, else cancelled."""
    has_requests = session.scalar(
        select(func.count()).select_from(AbsenceRequest).where(AbsenceRequest.meeting_id == meeting.id)
    )
    if meeting.announced_sequence is None and not has_requests:
        audit.record(session, actor, "meeting.delete", meeting, audit.snapshot(meeting, mt.MEETING_FIELDS), None,
                     note=CHANGED_BY_RULE)
        session.execute(delete(agenda.AgendaItem).where(agenda.AgendaItem.meeting_id == meeting.id))
        session.delete(meeting)
        session.flush()
        mt.announce_change(session, meeting)
        return
    mt.change_status(session, actor, meeting, MeetingStatus.CANCELLED, now=now, reason=CHANGED_BY_RULE)


def extend_all(session: Session, now: dt.datetime) -> int:
    """Keep every cell with rules generated twelve months ahead (run by the background job)."""
    today = now.astimezone(LOCAL_TZ).date()
    horizon = today.replace(day=1) + relativedelta(months=MONTHS_AHEAD)
    latest = dict(session.execute(
        select(MeetingRule.cell_id, func.max(Meeting.occurrence_on))
        .join(Meeting, Meeting.rule_id == MeetingRule.id, isouter=True)
        .where(MeetingRule.active.is_(True))
        .group_by(MeetingRule.cell_id)
    ).all())
    done = 0
    for cell_id, last in latest.items():
        if last is None or last < horizon:
            cell = session.get(Organisation, cell_id)
            if cell is not None and cell.active:
                sync_cell(session, Actor.system("lịch tự động"), cell, now)
                done += 1
    return done


# --------------------------------------------------------------------------- single meetings


def require_reason(reason: str | None, what: str) -> str:
    text = clean_text(reason)
    if not text:
        raise ValidationError(f"{what} phải ghi rõ lý do; lý do được báo cho đảng viên và lưu vào nhật ký.",
                              field="reason")
    if len(text) > 1000:
        raise ValidationError("Lý do quá dài (tối đa 1000 ký tự).", field="reason")
    return text


def cancel_meeting(session: Session, actor: Actor, meeting: Meeting, reason: str | None, *, now: dt.datetime) -> None:
    text = require_reason(reason, "Hủy cuộc họp")
    if meeting.status != MeetingStatus.SCHEDULED:
        raise ValidationError(f"Không thể hủy cuộc họp đang ở trạng thái “{meeting.status.label}”.")
    meeting.touched = True
    mt.change_status(session, actor, meeting, MeetingStatus.CANCELLED, now=now, reason=text)


@dataclass
class DetailsInput:
    title: str
    topic: str | None
    place: str | None
    expected_minutes: str | int
    combined_thematic: bool = False
    remote_open: bool = False
    lobby: bool = False


def update_details(session: Session, actor: Actor, meeting: Meeting, data: DetailsInput, *, now: dt.datetime) -> None:
    if meeting.status in (MeetingStatus.CLOSED, MeetingStatus.CANCELLED):
        raise ValidationError(f"Cuộc họp “{meeting.status.label}”, không sửa được nữa.")
    title = clean_text(data.title)
    if not title:
        raise ValidationError("Tên cuộc họp không được để trống.", field="title")
    topic = optional_text(data.topic)
    combined = data.combined_thematic and meeting.kind == MeetingKind.REGULAR
    if (meeting.kind == MeetingKind.THEMATIC or combined) and not topic:
        raise ValidationError("Sinh hoạt chuyên đề cần có tên chuyên đề.", field="topic")
    minutes = _int(data.expected_minutes, "Thời lượng dự kiến (phút)", 15, 600)
    if data.remote_open and not meeting.remote_open and pilot_approval(session, meeting.cell_id, meeting.local_date) is None:
        raise ValidationError("Chi bộ chưa được cấp ủy cấp trên phê duyệt thí điểm sinh hoạt trực tuyến "
                              "(Hướng dẫn 03-HD/TW), nên chưa thể mở tham gia trực tuyến.", field="remote_open")
    before = audit.snapshot(meeting, mt.MEETING_FIELDS)
    told = (optional_text(data.place) != meeting.place or minutes != meeting.expected_minutes
            or title != meeting.title)
    combined_changed = combined != meeting.combined_thematic
    meeting.title, meeting.topic, meeting.place = title, topic, optional_text(data.place)
    meeting.expected_minutes = minutes
    meeting.combined_thematic, meeting.remote_open, meeting.lobby = combined, data.remote_open, data.lobby
    if told and meeting.status == MeetingStatus.SCHEDULED:
        meeting.sequence += 1
    meeting.touched = True
    session.flush()
    if combined_changed:
        agenda.apply_template(session, meeting)
    after = audit.snapshot(meeting, mt.MEETING_FIELDS)
    if after != before:
        audit.record(session, actor, "meeting.update", meeting, before, after)
        mt.announce_change(session, meeting)


def create_adhoc(session: Session, actor: Actor, cell: Organisation, *, kind: MeetingKind, starts_at: dt.datetime,
                 now: dt.datetime, expected_minutes: str | int = 120, place: str | None = None,
                 topic: str | None = None, title: str | None = None) -> Meeting:
    """A meeting the secretary adds by hand (extraordinary, an extra thematic one, ...)."""
    if starts_at <= now:
        raise ValidationError("Thời gian họp phải ở tương lai.", field="starts_at")
    minutes = _int(expected_minutes, "Thời lượng dự kiến (phút)", 15, 600)
    if kind == MeetingKind.COMMITTEE and not cell.has_committee:
        raise ValidationError("Chi bộ không có chi ủy.", field="kind")
    local = starts_at.astimezone(LOCAL_TZ)
    meeting = mt.create_meeting(
        session, actor, cell, kind=kind, starts_at=starts_at.astimezone(dt.UTC), expected_minutes=minutes,
        place=optional_text(place) or cell.address, topic=optional_text(topic),
        title=optional_text(title) or f"{kind.label} ngày {local:%d/%m/%Y}",
    )
    meeting.touched = True
    session.flush()
    agenda.apply_template(session, meeting)
    return meeting


# --------------------------------------------------------------------------- durations (HD 42)


def minimums(session: Session, cell_id: int) -> tuple[int, int]:
    """(regular, combined) minimum minutes for a cell: HD 42's 90/120 unless overridden."""
    row = session.scalar(select(CellScheduleSettings).where(CellScheduleSettings.cell_id == cell_id))
    return (
        (row.min_regular_minutes if row and row.min_regular_minutes else MIN_REGULAR_MINUTES),
        (row.min_combined_minutes if row and row.min_combined_minutes else MIN_COMBINED_MINUTES),
    )


def duration_warning(meeting: Meeting, minutes: int | None, min_regular: int, min_combined: int) -> str | None:
    """Warn (never block) on a regular meeting that was too short (decision 3)."""
    if minutes is None or meeting.kind != MeetingKind.REGULAR:
        return None
    if meeting.combined_thematic:
        if minutes < min_combined:
            return (f"Buổi sinh hoạt thường kỳ kết hợp chuyên đề kéo dài {minutes} phút, dưới {min_combined} phút "
                    "(Hướng dẫn 42-HD/BTCTW).")
        return None
    if minutes < min_regular:
        return f"Buổi sinh hoạt thường kỳ kéo dài {minutes} phút, dưới {min_regular} phút (Hướng dẫn 42-HD/BTCTW)."
    return None


def meeting_duration_warning(session: Session, meeting: Meeting) -> str | None:
    return duration_warning(meeting, meeting.duration_minutes, *minimums(session, meeting.cell_id))


def set_minimums(session: Session, actor: Actor, cell: Organisation, min_regular: str | int | None,
                 min_combined: str | int | None, basis: str | None) -> CellScheduleSettings:
    regular = _int(min_regular, "Thời lượng tối thiểu sinh hoạt thường kỳ (phút)", 30, 240, required=False)
    combined = _int(min_combined, "Thời lượng tối thiểu khi kết hợp chuyên đề (phút)", 30, 300, required=False)
    basis_text = optional_text(basis)
    if (regular or combined) and not basis_text:
        raise ValidationError("Cần ghi căn cứ (quyết định của cấp ủy có thẩm quyền) khi đặt thời lượng riêng.",
                              field="basis")
    row = session.scalar(select(CellScheduleSettings).where(CellScheduleSettings.cell_id == cell.id))
    fields = ("min_regular_minutes", "min_combined_minutes", "basis")
    before = audit.snapshot(row, fields) if row else None
    if row is None:
        row = CellScheduleSettings(cell_id=cell.id)
        session.add(row)
    row.min_regular_minutes, row.min_combined_minutes, row.basis = regular, combined, basis_text
    session.flush()
    audit.record(session, actor, "cell.min_duration", row, before, audit.snapshot(row, fields))
    return row


def upcoming(session: Session, cell_id: int, now: dt.datetime, *, past_days: int = 62) -> list[Meeting]:
    since = now - dt.timedelta(days=past_days)
    return list(session.scalars(
        select(Meeting).where(Meeting.cell_id == cell_id, Meeting.starts_at >= since).order_by(Meeting.starts_at)
    ))


def parse_local_datetime(date_text: str | None, time_text: str | None, label: str) -> dt.datetime:
    day = parse_date(date_text, label=f"{label}: ngày")
    assert day is not None
    return dt.datetime.combine(day, parse_time(time_text or "", f"{label}: giờ"), tzinfo=LOCAL_TZ)
