"""The higher committees' audit of meeting regularity, per cell and per level of the tree.

For a committee's subtree and a year (or one quarter of it), per cell:

* the **regular meeting of each month** — *on time*, *late* or *missing* — from the schedule
  compliance reports (``meetings.compliance``, not recomputed here). A month's meeting is
  **late** when it was held more than :data:`LATE_AFTER_DAYS` days after the day the cell's
  own rule planned it for (``Meeting.occurrence_on``; a meeting moved with a reason keeps that
  day). Meetings added by hand have no planned day and are on time whenever held in their
  month. A month whose meeting was held in a later month is *missing* (decision 2: one regular
  meeting per calendar month). "Too short" (HD 42) is counted beside on time / late;
* the **thematic meeting of each quarter** (held / missing), also from compliance;
* **minutes**: how many held meetings have adopted minutes and how many days after the
  meeting the first version was adopted (0: at the meeting);
* **attendance**: present / expected over the rosters of the held regular and thematic
  meetings (decision 7's expected members; exempt and transferred ones are not expected),
  held meetings without a roster counted apart;
* **away members** (an away period during the period) and their online participation: away
  members present online / away members expected, from the rosters;
* **flagged members**: warnings and "xem xét xóa tên" flags of the year (``meetings.three_month``).

Totals are the sums over the cells below each child of the audited committee, and over the
whole subtree (rates are recomputed from the sums, never averaged).

Cost: a province of 3,000 cells is seven queries — the cells, their meetings and duration
overrides (compliance), one aggregate over the roster lines grouped by meeting (answered from
a covering index), one over the minutes, one over flags, one over away periods — read as the
driver's tuples, and a pass over ~40,000 meetings with the garbage collector paused
(``app.tuning.paused_gc``, around the call). :func:`statements` returns the aggregate queries so that the
benchmark can time them bare.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from ..foundation.base import LOCAL_TZ
from ..foundation.sqltime import minutes_between, plain_rows
from ..organisation.members import MemberPeriod, Membership, PeriodKind
from ..organisation.organisations import Organisation, OrgKind, subtree_filter
from ..planning import compliance
from ..planning.compliance import Mark
from ..planning.meetings import Meeting, MeetingKind, MeetingStatus
from ..proceedings.attendance import AttendanceMode, AttendanceRecord, AttendanceStatus
from ..proceedings.minutes import MinutesVersion
from .records import held_condition
from .three_month import Level, MemberFlag

#: A regular meeting held more than this many days after its planned day is late.
LATE_AFTER_DAYS = 7
#: Minutes adopted within this many days of the meeting count as prompt.
PROMPT_MINUTES_DAYS = 7


class Regular(enum.StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    MISSING = "missing"
    NOT_DUE = "not_due"

    @property
    def label(self) -> str:
        return {"on_time": "Đúng hạn", "late": "Muộn", "missing": "Thiếu", "not_due": "Chưa đến hạn"}[self.value]


@dataclass(slots=True)
class Tally:
    """Sums over one cell or many; every rate is computed from these."""

    cells: int = 0
    months_due: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    too_short: int = 0
    quarters_due: int = 0
    thematic_held: int = 0
    thematic_missing: int = 0
    held: int = 0
    no_roster: int = 0
    minutes_adopted: int = 0
    minutes_prompt: int = 0
    minutes_days: int = 0
    expected: int = 0
    present: int = 0
    present_online: int = 0
    away_members: int = 0
    away_expected: int = 0
    away_online: int = 0
    warnings: int = 0
    removal_reviews: int = 0

    def add(self, other: Tally) -> None:
        for name in _TALLY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return None if whole == 0 else part / whole

    @property
    def regular_held(self) -> int:
        return self.on_time + self.late

    @property
    def regular_rate(self) -> float | None:
        return self._rate(self.regular_held, self.months_due)

    @property
    def attendance_rate(self) -> float | None:
        return self._rate(self.present, self.expected)

    @property
    def away_online_rate(self) -> float | None:
        return self._rate(self.away_online, self.away_expected)

    @property
    def minutes_rate(self) -> float | None:
        return self._rate(self.minutes_adopted, self.held)

    @property
    def minutes_prompt_rate(self) -> float | None:
        """Share of held meetings whose minutes were adopted within PROMPT_MINUTES_DAYS."""
        return self._rate(self.minutes_prompt, self.held)

    @property
    def minutes_average_days(self) -> float | None:
        return None if self.minutes_adopted == 0 else self.minutes_days / self.minutes_adopted

    @property
    def gaps(self) -> int:
        return self.missing + self.late + self.thematic_missing


_TALLY_FIELDS = tuple(f.name for f in fields(Tally))


@dataclass(slots=True)
class MonthMark:
    month: int
    status: Regular
    cell: compliance.Cell
    #: Days after the planned day (late meetings), else None.
    late_days: int | None = None


@dataclass
class CellAudit:
    id: int
    name: str
    code: str
    path: str
    #: The child of the audited committee this cell falls under (itself for a direct child).
    child_id: int
    months: list[MonthMark] = field(default_factory=list)
    quarters: list[tuple[int, Mark, compliance.Cell]] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


@dataclass
class MonthTrend:
    month: int
    expected: int = 0
    present: int = 0
    away_expected: int = 0
    away_online: int = 0
    #: Cells whose regular meeting was due / held (on time or late) this month.
    due: int = 0
    held: int = 0

    @property
    def attendance_rate(self) -> float | None:
        return None if self.expected == 0 else self.present / self.expected

    @property
    def away_online_rate(self) -> float | None:
        return None if self.away_expected == 0 else self.away_online / self.away_expected


@dataclass
class Audit:
    org: Organisation
    year: int
    quarter: int | None
    months: list[int]
    cells: list[CellAudit]
    children: list[tuple[Organisation, Tally]]
    total: Tally
    trend: list[MonthTrend]

    @property
    def quarters(self) -> list[int]:
        return [self.quarter] if self.quarter else [1, 2, 3, 4]


@dataclass(frozen=True, slots=True)
class MeetingFigures:
    meeting_id: int
    expected: int
    present: int
    present_online: int
    excused: int
    unexcused: int
    away_expected: int
    away_online: int


def period_months(quarter: int | None) -> list[int]:
    if quarter is None:
        return list(range(1, 13))
    if quarter not in (1, 2, 3, 4):
        raise ValueError(quarter)
    return [quarter * 3 - 2, quarter * 3 - 1, quarter * 3]


def bounds(year: int, quarter: int | None) -> tuple[dt.datetime, dt.datetime]:
    months = period_months(quarter)
    lo = dt.datetime(year, months[0], 1, tzinfo=LOCAL_TZ)
    last = months[-1]
    hi = dt.datetime(year + (last == 12), last % 12 + 1, 1, tzinfo=LOCAL_TZ)
    return lo, hi


def _held(org: Organisation, year: int, quarter: int | None):  # type: ignore[no-untyped-def]
    """The subtree's held regular and thematic meetings in the period (a WHERE clause)."""
    lo, hi = bounds(year, quarter)
    subtree = select(Organisation.id).where(subtree_filter(org)).scalar_subquery()
    return and_(Meeting.cell_id.in_(subtree), Meeting.starts_at >= lo, Meeting.starts_at < hi,
                Meeting.kind.in_([MeetingKind.REGULAR, MeetingKind.THEMATIC]), held_condition())


def _counts(*conditions) -> list[object]:  # type: ignore[no-untyped-def]
    """COUNT(*) FILTER (WHERE …) per condition: one pass over the roster lines (SQLite ≥ 3.30,
    PostgreSQL), quicker than SUM(CASE …) on SQLite."""
    return [func.count().filter(c) for c in conditions]


def statements(org: Organisation, year: int, quarter: int | None) -> dict[str, Select]:  # type: ignore[type-arg]
    """The aggregate queries of an audit beyond compliance's (also timed bare by bench/audit.py)."""
    lo, hi = bounds(year, quarter)
    held = select(Meeting.id).where(_held(org, year, quarter))
    a = AttendanceRecord
    present = a.status == AttendanceStatus.PRESENT
    online = and_(present, a.mode == AttendanceMode.ONLINE)
    # Grouped by the roster's own meeting column, so that the covering index is all it reads;
    # which cell and month each meeting belongs to comes from compliance's rows.
    attendance = (
        select(a.meeting_id, *_counts(a.expected, and_(a.expected, present), and_(a.expected, online),
                                      and_(a.expected, a.away), and_(a.expected, a.away, online)))
        .where(a.meeting_id.in_(held)).group_by(a.meeting_id)
    )
    # Minutes from each meeting's end to its first adopted version (NULL: none adopted): a
    # correlated lookup per meeting, so that the cost follows the period, not the whole history.
    first = (select(func.min(MinutesVersion.adopted_at)).where(MinutesVersion.meeting_id == Meeting.id)
             .correlate(Meeting).scalar_subquery())
    ended = func.coalesce(Meeting.actual_end_at, Meeting.closed_at, Meeting.starts_at)
    minutes = select(Meeting.id, minutes_between(ended, first)).where(_held(org, year, quarter))
    subtree = select(Organisation.id).where(subtree_filter(org)).scalar_subquery()
    flags = (select(MemberFlag.cell_id, MemberFlag.member_id, func.max(MemberFlag.level))
             .where(MemberFlag.cell_id.in_(subtree), MemberFlag.year == year, MemberFlag.level >= Level.WARNING)
             .group_by(MemberFlag.cell_id, MemberFlag.member_id))
    first_day, last_day = lo.date(), (hi - dt.timedelta(days=1)).date()
    away = (select(Membership.cell_id, func.count(distinct(MemberPeriod.member_id)))
            .join(MemberPeriod, MemberPeriod.member_id == Membership.member_id)
            .where(Membership.cell_id.in_(subtree), Membership.start_on <= last_day,
                   or_(Membership.end_on.is_(None), Membership.end_on >= first_day),
                   MemberPeriod.kind == PeriodKind.AWAY, MemberPeriod.start_on <= last_day,
                   or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= first_day))
            .group_by(Membership.cell_id))
    return {"attendance": attendance, "minutes": minutes, "flags": flags, "away": away}


def _month_mark(month: int, cell: compliance.Cell) -> MonthMark:
    if cell.mark in (Mark.HELD, Mark.TOO_SHORT):
        if cell.planned_on is not None and cell.held_on is not None:
            days = (cell.held_on - cell.planned_on).days
            if days > LATE_AFTER_DAYS:
                return MonthMark(month, Regular.LATE, cell, days)
        return MonthMark(month, Regular.ON_TIME, cell)
    if cell.mark in (Mark.MISSING, Mark.UNRECORDED):
        return MonthMark(month, Regular.MISSING, cell)
    return MonthMark(month, Regular.NOT_DUE, cell)


def audit(session: Session, org: Organisation, year: int, quarter: int | None, now: dt.datetime) -> Audit:
    """The audit of ``org``'s subtree (see the module docstring)."""
    months = period_months(quarter)
    quarters = [quarter] if quarter else [1, 2, 3, 4]
    cells = compliance.subtree_cells(session, org)
    rows = compliance.subtree_rows(session, org, year, now, committee=False)
    reports = compliance.evaluate_subtree(session, org, cells, rows, year, now, committee=False)
    # Where each meeting belongs, and the meetings of the period that took place, per cell
    # (closed, end recorded, or still open: records.held_condition, as the aggregates count).
    placed: dict[int, tuple[int, int]] = {}
    held_in_period: dict[int, int] = {}
    in_period = set(months)
    OPEN = MeetingStatus.OPEN  # noqa: N806
    for r in rows:
        month = r.local_date.month
        placed[r.id] = (r.cell_id, month)
        if (r.held or r.status is OPEN) and month in in_period and r.local_date.year == year:
            held_in_period[r.cell_id] = held_in_period.get(r.cell_id, 0) + 1
    results = {name: plain_rows(session, stmt) for name, stmt in statements(org, year, quarter).items()}
    figures = results["attendance"]
    flagged = results["flags"]
    away = dict(results["away"])

    depth = len([p for p in org.path.split("/") if p])
    audits: dict[int, CellAudit] = {}
    for cell_id, name, code, path, _created, _committee in cells:
        parts = path.strip("/").split("/")
        audits[cell_id] = CellAudit(cell_id, name, code, path, int(parts[depth]) if len(parts) > depth else cell_id)
    trend = {m: MonthTrend(m) for m in months}
    due_by_month = dict.fromkeys(months, 0)
    held_by_month = dict.fromkeys(months, 0)
    LATE, MISSING, NOT_DUE = Regular.LATE, Regular.MISSING, Regular.NOT_DUE  # noqa: N806
    HELD, TOO_SHORT, UNRECORDED = Mark.HELD, Mark.TOO_SHORT, Mark.UNRECORDED  # noqa: N806
    for cell_id, report in reports.items():
        ca = audits[cell_id]
        t = ca.tally
        marks = ca.months
        due = on_time = late = missing = too_short = 0
        for m in months:
            cell = report.months[m - 1].regular
            mark = _month_mark(m, cell)
            marks.append(mark)
            status = mark.status
            if status is NOT_DUE:
                continue
            due += 1
            due_by_month[m] += 1
            if status is MISSING:
                missing += 1
                continue
            held_by_month[m] += 1
            if status is LATE:
                late += 1
            else:
                on_time += 1
            if cell.mark is TOO_SHORT:
                too_short += 1
        t.cells, t.months_due, t.on_time, t.late, t.missing, t.too_short = 1, due, on_time, late, missing, too_short
        t.away_members = away.get(cell_id, 0)
        for q in quarters:
            thematic = report.quarters[q - 1].thematic
            ca.quarters.append((q, thematic.mark, thematic))
            if thematic.mark is HELD or thematic.mark is TOO_SHORT:
                t.quarters_due += 1
                t.thematic_held += 1
            elif thematic.mark is Mark.MISSING or thematic.mark is UNRECORDED:
                t.quarters_due += 1
                t.thematic_missing += 1
    for m in months:
        trend[m].due, trend[m].held = due_by_month[m], held_by_month[m]
    # Roster figures: summed per cell in plain lists, then written to the tallies once.
    sums: dict[int, list[int]] = {}
    by_month = {m: [0, 0, 0, 0] for m in months}
    for meeting_id, expected, present, online, away_expected, away_online in figures:
        cell_id, month = placed[meeting_id]
        acc = sums.get(cell_id)
        if acc is None:
            sums[cell_id] = acc = [0, 0, 0, 0, 0, 0]
        acc[0] += expected
        acc[1] += present
        acc[2] += online
        acc[3] += away_expected
        acc[4] += away_online
        acc[5] += 1  # meetings with a roster
        point = by_month.get(month)
        if point is not None:
            point[0] += expected
            point[1] += present
            point[2] += away_expected
            point[3] += away_online
    for cell_id, held in held_in_period.items():
        audits[cell_id].tally.held = audits[cell_id].tally.no_roster = held
    for cell_id, (expected, present, online, away_expected, away_online, rostered) in sums.items():
        t = audits[cell_id].tally
        t.expected, t.present, t.present_online, t.away_expected, t.away_online = (
            expected, present, online, away_expected, away_online)
        t.no_roster -= rostered
    for m, (expected, present, away_expected, away_online) in by_month.items():
        point = trend[m]
        point.expected, point.present, point.away_expected, point.away_online = (
            expected, present, away_expected, away_online)
    for meeting_id, delay in results["minutes"]:
        if delay is None:
            continue
        t = audits[placed[meeting_id][0]].tally
        days = max(0, delay) // 1440
        t.minutes_adopted += 1
        t.minutes_days += days
        if days <= PROMPT_MINUTES_DAYS:
            t.minutes_prompt += 1
    for cell_id, _member_id, level in flagged:
        t = audits[cell_id].tally
        if level >= Level.REMOVAL_REVIEW:
            t.removal_reviews += 1
        else:
            t.warnings += 1

    by_child: dict[int, Tally] = {}
    for ca in audits.values():
        child = by_child.get(ca.child_id)
        if child is None:
            by_child[ca.child_id] = child = Tally()
        child.add(ca.tally)
    total = Tally()
    for child in by_child.values():
        total.add(child)
    child_orgs = [] if org.kind == OrgKind.CELL else list(session.scalars(
        select(Organisation).where(Organisation.id.in_(list(by_child))).order_by(Organisation.name)))
    return Audit(org, year, quarter, months, list(audits.values()), [(c, by_child[c.id]) for c in child_orgs], total,
                 [trend[m] for m in months])


def meeting_figures(session: Session, cell: Organisation, year: int, quarter: int | None
                    ) -> tuple[list[Meeting], dict[int, MeetingFigures], dict[int, int]]:
    """A cell's meetings of the period (every kind but chi ủy) with their roster figures and
    the minutes' delay in minutes: the cell's drill-down page."""
    lo, hi = bounds(year, quarter)
    meetings = list(session.scalars(select(Meeting).where(
        Meeting.cell_id == cell.id, Meeting.starts_at >= lo, Meeting.starts_at < hi,
        Meeting.kind != MeetingKind.COMMITTEE).order_by(Meeting.starts_at)))
    ids = [m.id for m in meetings]
    a = AttendanceRecord
    present = a.status == AttendanceStatus.PRESENT
    online = and_(present, a.mode == AttendanceMode.ONLINE)
    absent = and_(a.expected, a.status == AttendanceStatus.ABSENT)
    conn = session.connection()
    figures = {row[0]: MeetingFigures(*row) for row in conn.execute(
        select(a.meeting_id, *_counts(a.expected, and_(a.expected, present), and_(a.expected, online),
                                      and_(absent, a.excused.is_(True)),
                                      and_(absent, or_(a.excused.is_(False), a.excused.is_(None))),
                                      and_(a.expected, a.away), and_(a.expected, a.away, online)))
        .where(a.meeting_id.in_(ids)).group_by(a.meeting_id)).all()} if ids else {}
    first = (select(func.min(MinutesVersion.adopted_at)).where(MinutesVersion.meeting_id == Meeting.id)
             .correlate(Meeting).scalar_subquery())
    ended = func.coalesce(Meeting.actual_end_at, Meeting.closed_at, Meeting.starts_at)
    adopted = {meeting_id: max(0, minutes) for meeting_id, minutes in conn.execute(
        select(Meeting.id, minutes_between(ended, first)).where(Meeting.id.in_(ids))).all()
        if minutes is not None} if ids else {}
    return meetings, figures, adopted


def as_rows(result: Audit) -> list[list[object]]:
    """One row per cell, for CSV and XLSX (header first)."""
    months = result.months
    header: list[object] = ["Cấp ủy trực thuộc", "Mã chi bộ", "Chi bộ",
                            *[f"Tháng {m}" for m in months],
                            "Thường kỳ đúng hạn", "Thường kỳ muộn", "Thường kỳ thiếu", "Dưới thời lượng",
                            *[f"Chuyên đề quý {q}" for q in result.quarters],
                            "Buổi họp đã diễn ra", "Không có điểm danh", "Biên bản đã thông qua",
                            f"Thông qua trong {PROMPT_MINUTES_DAYS} ngày", "Số ngày TB đến khi thông qua", "Phải dự (lượt)", "Có mặt (lượt)", "Tỷ lệ dự họp (%)",
                            "Đảng viên đi làm ăn xa", "Tỷ lệ tham gia trực tuyến của ĐV đi làm ăn xa (%)",
                            "Cảnh báo 2 tháng", "Xem xét xóa tên"]
    names = {c.id: c.name for c, _ in result.children}
    rows: list[list[object]] = [header]
    for ca in result.cells:
        t = ca.tally
        rows.append([
            names.get(ca.child_id, ""), ca.code, ca.name, *[mm.status.label for mm in ca.months],
            t.on_time, t.late, t.missing, t.too_short, *[mark.label for _, mark, _ in ca.quarters],
            t.held, t.no_roster, t.minutes_adopted, t.minutes_prompt,
            None if t.minutes_average_days is None else round(t.minutes_average_days, 1),
            t.expected, t.present, _percent(t.attendance_rate), t.away_members, _percent(t.away_online_rate),
            t.warnings, t.removal_reviews,
        ])
    return rows


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def cells_with_gaps(result: Audit, limit: int = 30) -> Sequence[CellAudit]:
    """The cells needing attention first: missing, late and thematic gaps, then flags."""
    ranked = [c for c in result.cells if c.tally.gaps or c.tally.removal_reviews]
    ranked.sort(key=lambda c: (-c.tally.missing, -c.tally.thematic_missing, -c.tally.late, -c.tally.removal_reviews,
                               c.name))
    return ranked[:limit]
