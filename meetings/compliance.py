"""Schedule compliance per cell and year: was each month's meeting held, and each quarter's?

Decision 2 (shared/domain/cases.md): one regular meeting per calendar month, a chi ủy
meeting before it where the cell has a chi ủy, at least one thematic meeting per quarter
(possibly combined with a regular one); extraordinary meetings do not count. Decision 3: a
regular meeting under 90 minutes (combined: 120; per-cell override) is *too short*.

The computation takes plain rows, so it runs over any set of cells with one query per table:
:func:`for_cells` loads the meetings of all the given cells for the year in one query, their
duration overrides in another, and evaluates in Python; :func:`for_subtree` selects the cells
of a committee's subtree by its materialised path. A province is then three queries.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from .base import LOCAL_TZ
from .meetings import Meeting, MeetingKind, MeetingStatus
from .organisations import Organisation, OrgKind, subtree_filter
from .schedules import MIN_COMBINED_MINUTES, MIN_REGULAR_MINUTES, CellScheduleSettings


class Mark(enum.StrEnum):
    HELD = "held"
    TOO_SHORT = "too_short"
    SCHEDULED = "scheduled"
    UNRECORDED = "unrecorded"  # its time has passed, but nobody recorded it as held
    MISSING = "missing"
    NOT_YET = "not_yet"  # a month or quarter still ahead, with nothing planned yet
    NOT_APPLICABLE = "n/a"  # before the cell existed

    @property
    def label(self) -> str:
        return {
            "held": "Đã họp", "too_short": "Đã họp, thời lượng ngắn", "scheduled": "Đã lên lịch",
            "unrecorded": "Chưa ghi nhận kết quả", "missing": "Thiếu", "not_yet": "Chưa lên lịch",
            "n/a": "—",
        }[self.value]

    @property
    def gap(self) -> bool:
        return self in (Mark.MISSING, Mark.TOO_SHORT, Mark.UNRECORDED)


@dataclass(frozen=True)
class Row:
    """The columns compliance needs from a meeting (one query fetches them for many cells)."""

    id: int
    cell_id: int
    kind: MeetingKind
    combined: bool
    starts_at: dt.datetime
    status: MeetingStatus
    actual_start_at: dt.datetime | None
    actual_end_at: dt.datetime | None
    opened_at: dt.datetime | None
    closed_at: dt.datetime | None

    @property
    def local_date(self) -> dt.date:
        return self.starts_at.astimezone(LOCAL_TZ).date()

    @property
    def minutes(self) -> int | None:
        if self.actual_start_at and self.actual_end_at:
            return int((self.actual_end_at - self.actual_start_at).total_seconds() // 60)
        if self.opened_at and self.closed_at:
            return int((self.closed_at - self.opened_at).total_seconds() // 60)
        return None

    @property
    def held(self) -> bool:
        return self.status == MeetingStatus.CLOSED or self.actual_end_at is not None


@dataclass
class Cell:
    mark: Mark
    meeting_id: int | None = None
    minutes: int | None = None
    note: str = ""


@dataclass
class Month:
    month: int
    regular: Cell
    committee: Cell | None


@dataclass
class Quarter:
    quarter: int
    thematic: Cell


@dataclass
class Report:
    cell_id: int
    year: int
    months: list[Month] = field(default_factory=list)
    quarters: list[Quarter] = field(default_factory=list)

    @property
    def gaps(self) -> int:
        cells = [m.regular for m in self.months] + [m.committee for m in self.months if m.committee]
        cells += [q.thematic for q in self.quarters]
        return sum(1 for c in cells if c.mark.gap)


def _month_end(year: int, month: int) -> dt.date:
    return (dt.date(year + (month == 12), month % 12 + 1, 1)) - dt.timedelta(days=1)


def _judge(rows: Sequence[Row], period_end: dt.date, period_start: dt.date, today: dt.date, now: dt.datetime,
           min_minutes: tuple[int, int] | None, created_on: dt.date) -> Cell:
    if period_end < created_on:
        return Cell(Mark.NOT_APPLICABLE)
    live = [r for r in rows if r.status != MeetingStatus.CANCELLED]
    held = [r for r in live if r.held]
    if held:
        best = max(held, key=lambda r: r.minutes or 0)
        if min_minutes is not None and best.minutes is not None:
            need = min_minutes[1] if best.combined else min_minutes[0]
            if best.minutes < need:
                return Cell(Mark.TOO_SHORT, best.id, best.minutes, f"{best.minutes} phút, dưới {need} phút (HD 42)")
        return Cell(Mark.HELD, best.id, best.minutes)
    ahead = [r for r in live if r.starts_at > now or r.status == MeetingStatus.OPEN]
    if ahead:
        return Cell(Mark.SCHEDULED, ahead[0].id, note=f"ngày {ahead[0].local_date:%d/%m}")
    if live:
        return Cell(Mark.UNRECORDED, live[0].id, note=f"ngày {live[0].local_date:%d/%m}: chưa ghi giờ họp thực tế")
    if period_start > today:
        return Cell(Mark.NOT_YET)
    return Cell(Mark.MISSING)


def evaluate(cell: Organisation, rows: Sequence[Row], year: int, now: dt.datetime,
             minimums: tuple[int, int] = (MIN_REGULAR_MINUTES, MIN_COMBINED_MINUTES)) -> Report:
    today = now.astimezone(LOCAL_TZ).date()
    report = Report(cell.id, year)
    by_month: dict[tuple[MeetingKind, int], list[Row]] = {}
    thematic_by_quarter: dict[int, list[Row]] = {}
    for row in rows:
        day = row.local_date
        if day.year != year:
            continue
        by_month.setdefault((row.kind, day.month), []).append(row)
        if row.kind == MeetingKind.THEMATIC or (row.kind == MeetingKind.REGULAR and row.combined):
            thematic_by_quarter.setdefault((day.month - 1) // 3 + 1, []).append(row)
    for month in range(1, 13):
        start, end = dt.date(year, month, 1), _month_end(year, month)
        regular = _judge(by_month.get((MeetingKind.REGULAR, month), []), end, start, today, now, minimums,
                         cell.created_on)
        committee = None
        if cell.has_committee:
            committee = _judge(by_month.get((MeetingKind.COMMITTEE, month), []), end, start, today, now, None,
                               cell.created_on)
        report.months.append(Month(month, regular, committee))
    for quarter in range(1, 5):
        start, end = dt.date(year, quarter * 3 - 2, 1), _month_end(year, quarter * 3)
        # A combined session counts as the quarter's thematic meeting even when it was short;
        # the shortness is flagged on its month.
        report.quarters.append(Quarter(quarter, _judge(thematic_by_quarter.get(quarter, []), end, start, today, now,
                                                       None, cell.created_on)))
    return report


def _rows(session: Session, stmt) -> list[Row]:  # type: ignore[no-untyped-def]
    return [Row(*r) for r in session.execute(stmt)]


def _row_columns():  # type: ignore[no-untyped-def]
    return (Meeting.id, Meeting.cell_id, Meeting.kind, Meeting.combined_thematic, Meeting.starts_at, Meeting.status,
            Meeting.actual_start_at, Meeting.actual_end_at, Meeting.opened_at, Meeting.closed_at)


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime(year, 1, 1, tzinfo=LOCAL_TZ), dt.datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ))


def for_cells(session: Session, cells: Sequence[Organisation], year: int, now: dt.datetime) -> dict[int, Report]:
    """Reports for many cells: one query for their meetings, one for their overrides."""
    if not cells:
        return {}
    ids = [c.id for c in cells]
    lo, hi = _year_bounds(year)
    rows = _rows(session, select(*_row_columns()).where(
        Meeting.cell_id.in_(ids), Meeting.starts_at >= lo, Meeting.starts_at < hi,
        Meeting.kind != MeetingKind.EXTRAORDINARY))
    return _evaluate_all(session, cells, rows, ids, year, now)


def _evaluate_all(session: Session, cells: Sequence[Organisation], rows: list[Row], ids: list[int], year: int,
                  now: dt.datetime) -> dict[int, Report]:
    overrides = {
        s.cell_id: (s.min_regular_minutes or MIN_REGULAR_MINUTES, s.min_combined_minutes or MIN_COMBINED_MINUTES)
        for s in session.scalars(select(CellScheduleSettings).where(CellScheduleSettings.cell_id.in_(ids)))
    }
    grouped: dict[int, list[Row]] = {i: [] for i in ids}
    for row in rows:
        grouped[row.cell_id].append(row)
    return {
        c.id: evaluate(c, grouped[c.id], year, now, overrides.get(c.id, (MIN_REGULAR_MINUTES, MIN_COMBINED_MINUTES)))
        for c in cells
    }


def for_subtree(session: Session, org: Organisation, year: int, now: dt.datetime) -> dict[int, Report]:
    """Every cell under ``org``: cells, meetings and overrides — three queries in all."""
    cells = list(session.scalars(select(Organisation).where(subtree_filter(org), Organisation.kind == OrgKind.CELL)))
    if not cells:
        return {}
    lo, hi = _year_bounds(year)
    rows = _rows(session, select(*_row_columns())
                 .join(Organisation, Organisation.id == Meeting.cell_id)
                 .where(subtree_filter(org), Meeting.starts_at >= lo, Meeting.starts_at < hi,
                        Meeting.kind != MeetingKind.EXTRAORDINARY))
    return _evaluate_all(session, cells, rows, [c.id for c in cells], year, now)
