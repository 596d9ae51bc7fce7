"""Schedule compliance per cell and year: was each month's meeting held, and each quarter's?

Decision 2 (shared/domain/cases.md): one regular meeting per calendar month, a chi ủy
meeting before it where the cell has a chi ủy, at least one thematic meeting per quarter
(possibly combined with a regular one); extraordinary meetings do not count. Decision 3: a
regular meeting under 90 minutes (combined: 120; per-cell override) is *too short*.

The computation takes plain rows, so it runs over any set of cells with one query per table:
:func:`for_cells` loads the meetings of all the given cells for the year in one query, their
duration overrides in another, and evaluates in Python; :func:`for_subtree` selects the cells
of a committee's subtree by its materialised path. A province is then three queries.

The meetings query asks the database for each meeting's local day and duration in whole
minutes (``meetings.sqltime``), so that evaluating a province's ~50,000 meetings handles
plain dates and integers only; the auditors' roll-up (``meetings.regularity``) builds on
these reports.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from sqlalchemy import Boolean, and_, case, or_, select, type_coerce
from sqlalchemy.orm import Session

from ..foundation.base import LOCAL_TZ
from ..foundation.sqltime import AnySelect, among, local_date, minutes_between, plain_rows
from ..organisation.organisations import Organisation, OrgKind, subtree_filter
from .meetings import Meeting, MeetingKind, MeetingStatus
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


class Row(NamedTuple):
    """The columns compliance needs from a meeting (one query fetches them for many cells).
    Day, duration, "held" and "still ahead" are computed by the query (:func:`_row_columns`);
    a named tuple because a province has tens of thousands of them."""

    id: int
    cell_id: int
    kind: MeetingKind
    combined: bool
    local_date: dt.date
    status: MeetingStatus
    #: Recorded actual times first, otherwise the room's open and close (Meeting.duration_minutes).
    minutes: int | None
    #: Closed in the room or its end recorded (Meeting.is_over).
    held: bool
    #: Starts after the evaluation's "now".
    ahead: bool
    #: The day the cell's rule planned it for (None for meetings added by hand).
    planned_on: dt.date | None = None


@dataclass(slots=True)
class Cell:
    mark: Mark
    meeting_id: int | None = None
    minutes: int | None = None
    note: str = ""
    #: For a held meeting: the day it was held and the day its rule planned.
    held_on: dt.date | None = None
    planned_on: dt.date | None = None


@dataclass(slots=True)
class Month:
    month: int
    regular: Cell
    committee: Cell | None


@dataclass(slots=True)
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


def _judge(rows: Sequence[Row], period_end: dt.date, period_start: dt.date, today: dt.date,
           min_minutes: tuple[int, int] | None, created_on: dt.date) -> Cell:
    if period_end < created_on:
        return Cell(Mark.NOT_APPLICABLE)
    if not rows:
        return Cell(Mark.NOT_YET) if period_start > today else Cell(Mark.MISSING)
    if len(rows) == 1:  # the usual case, without the lists below
        best = rows[0]
        if best.status == MeetingStatus.CANCELLED:
            return Cell(Mark.NOT_YET) if period_start > today else Cell(Mark.MISSING)
        if not best.held:
            return _not_held(rows, period_start, today)
    else:
        live = [r for r in rows if r.status != MeetingStatus.CANCELLED]
        held = [r for r in live if r.held]
        if not held:
            return _not_held(live, period_start, today)
        best = max(held, key=lambda r: r.minutes or 0)
    if min_minutes is not None and best.minutes is not None:
        need = min_minutes[1] if best.combined else min_minutes[0]
        if best.minutes < need:
            return Cell(Mark.TOO_SHORT, best.id, best.minutes, f"{best.minutes} phút, dưới {need} phút (HD 42)",
                        best.local_date, best.planned_on)
    return Cell(Mark.HELD, best.id, best.minutes, "", best.local_date, best.planned_on)


def _not_held(live: Sequence[Row], period_start: dt.date, today: dt.date) -> Cell:
    """Nothing held in the period: something still ahead, something unrecorded, or nothing."""
    ahead = [r for r in live if r.ahead or r.status == MeetingStatus.OPEN]
    if ahead:
        return Cell(Mark.SCHEDULED, ahead[0].id, note=f"ngày {ahead[0].local_date:%d/%m}")
    if live:
        return Cell(Mark.UNRECORDED, live[0].id, note=f"ngày {live[0].local_date:%d/%m}: chưa ghi giờ họp thực tế")
    if period_start > today:
        return Cell(Mark.NOT_YET)
    return Cell(Mark.MISSING)


def _periods(year: int) -> tuple[list[tuple[dt.date, dt.date]], list[tuple[dt.date, dt.date]]]:
    months = [(dt.date(year, m, 1), _month_end(year, m)) for m in range(1, 13)]
    quarters = [(dt.date(year, q * 3 - 2, 1), _month_end(year, q * 3)) for q in range(1, 5)]
    return months, quarters


def evaluate(cell: Organisation, rows: Sequence[Row], year: int, now: dt.datetime,
             minimums: tuple[int, int] = (MIN_REGULAR_MINUTES, MIN_COMBINED_MINUTES)) -> Report:
    """One cell's year. ``rows`` are its meetings (as fetched by :func:`for_cells`)."""
    return _evaluate(cell.id, cell.created_on, cell.has_committee, rows, year, now.astimezone(LOCAL_TZ).date(),
                     minimums, _periods(year))


def _evaluate(cell_id: int, created_on: dt.date, has_committee: bool, rows: Sequence[Row], year: int,
              today: dt.date, minimums: tuple[int, int],
              periods: tuple[list[tuple[dt.date, dt.date]], list[tuple[dt.date, dt.date]]]) -> Report:
    report = Report(cell_id, year)
    regular: list[list[Row]] = [[] for _ in range(13)]
    committee: list[list[Row]] = [[] for _ in range(13)]
    thematic: list[list[Row]] = [[] for _ in range(5)]
    REGULAR, THEMATIC, COMMITTEE = MeetingKind.REGULAR, MeetingKind.THEMATIC, MeetingKind.COMMITTEE  # noqa: N806
    for row in rows:
        day = row.local_date
        if day.year != year:
            continue
        kind = row.kind
        if kind == REGULAR:
            regular[day.month].append(row)
            if row.combined:
                thematic[(day.month + 2) // 3].append(row)
        elif kind == THEMATIC:
            thematic[(day.month + 2) // 3].append(row)
        elif kind == COMMITTEE:
            committee[day.month].append(row)
    months, quarters = periods
    append = report.months.append
    for month, (start, end) in enumerate(months, 1):
        append(Month(
            month,
            _judge(regular[month], end, start, today, minimums, created_on),
            _judge(committee[month], end, start, today, None, created_on) if has_committee else None,
        ))
    for quarter, (start, end) in enumerate(quarters, 1):
        # A combined session counts as the quarter's thematic meeting even when it was short;
        # the shortness is flagged on its month.
        report.quarters.append(Quarter(quarter, _judge(thematic[quarter], end, start, today, None, created_on)))
    return report


_KINDS = {k.value: k for k in MeetingKind}
_STATUSES = {s.value: s for s in MeetingStatus}


def _rows(session: Session, stmt: AnySelect) -> list[Row]:
    # The driver's tuples, converted here: a province has ~40,000 meetings (meetings.sqltime).
    kinds, statuses = _KINDS, _STATUSES
    raw = plain_rows(session, stmt)
    if raw and not isinstance(raw[0][4], dt.date):  # SQLite: dates as text
        parse = dt.date.fromisoformat
        return [Row(i, cell, kinds[kind], bool(combined), parse(day), statuses[status], minutes, bool(held),
                    bool(ahead), parse(planned) if planned else None)
                for i, cell, kind, combined, day, status, minutes, held, ahead, planned in raw]
    return [Row(i, cell, kinds[kind], combined, day, statuses[status], minutes, held, ahead, planned)
            for i, cell, kind, combined, day, status, minutes, held, ahead, planned in raw]


def _row_columns(now: dt.datetime) -> tuple[Any, ...]:
    both_actual = and_(Meeting.actual_start_at.is_not(None), Meeting.actual_end_at.is_not(None))
    both_room = and_(Meeting.opened_at.is_not(None), Meeting.closed_at.is_not(None))
    minutes = case(
        (both_actual, minutes_between(Meeting.actual_start_at, Meeting.actual_end_at)),
        (both_room, minutes_between(Meeting.opened_at, Meeting.closed_at)),
        else_=None,
    )
    held = or_(Meeting.status == MeetingStatus.CLOSED, Meeting.actual_end_at.is_not(None))
    return (Meeting.id, Meeting.cell_id, Meeting.kind, Meeting.combined_thematic, local_date(Meeting.starts_at),
            Meeting.status, minutes, type_coerce(held, Boolean), type_coerce(Meeting.starts_at > now, Boolean),
            Meeting.occurrence_on)


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime(year, 1, 1, tzinfo=LOCAL_TZ), dt.datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ))


def for_cells(session: Session, cells: Sequence[Organisation], year: int, now: dt.datetime) -> dict[int, Report]:
    """Reports for many cells: one query for their meetings, one for their overrides."""
    if not cells:
        return {}
    ids = [c.id for c in cells]
    lo, hi = _year_bounds(year)
    rows = _rows(session, select(*_row_columns(now)).where(
        Meeting.cell_id.in_(ids), Meeting.starts_at >= lo, Meeting.starts_at < hi,
        Meeting.kind != MeetingKind.EXTRAORDINARY))
    return _evaluate_all(session, [(c.id, c.created_on, c.has_committee) for c in cells], rows, year, now)


def _evaluate_all(session: Session, cells: Sequence[tuple[int, dt.date, bool]], rows: list[Row], year: int,
                  now: dt.datetime, overrides_stmt: AnySelect | None = None) -> dict[int, Report]:
    ids = [c[0] for c in cells]
    stmt = overrides_stmt if overrides_stmt is not None else select(
        CellScheduleSettings.cell_id, CellScheduleSettings.min_regular_minutes,
        CellScheduleSettings.min_combined_minutes).where(CellScheduleSettings.cell_id.in_(ids))
    overrides = {
        cell_id: (regular or MIN_REGULAR_MINUTES, combined or MIN_COMBINED_MINUTES)
        for cell_id, regular, combined in session.connection().execute(stmt)
    }
    grouped: dict[int, list[Row]] = {i: [] for i in ids}
    for row in rows:
        grouped[row.cell_id].append(row)
    today = now.astimezone(LOCAL_TZ).date()
    periods = _periods(year)
    default = (MIN_REGULAR_MINUTES, MIN_COMBINED_MINUTES)
    return {
        cell_id: _evaluate(cell_id, created_on, has_committee, grouped[cell_id], year, today,
                           overrides.get(cell_id, default), periods)
        for cell_id, created_on, has_committee in cells
    }


CellInfo = tuple[int, str, str, str, dt.date, bool]


def cells_info(session: Session, cell_ids: Sequence[int]) -> list[CellInfo]:
    """(id, name, code, path, created_on, has_committee) of the given cells, by path."""
    if not cell_ids:
        return []
    rows = plain_rows(session, select(Organisation.id, Organisation.name, Organisation.code, Organisation.path,
                                      Organisation.created_on, Organisation.has_committee)
                      .where(among(Organisation.id, cell_ids), Organisation.kind == OrgKind.CELL)
                      .order_by(Organisation.path))
    if rows and isinstance(rows[0][4], str):  # SQLite: dates as text, booleans as 0/1
        parse = dt.date.fromisoformat
        return [(i, name, code, path, parse(created), bool(committee))
                for i, name, code, path, created, committee in rows]
    return [cast(CellInfo, tuple(r)) for r in rows]


def cells_statement(cell_ids: Sequence[int], year: int, now: dt.datetime, *, committee: bool = True) -> AnySelect:
    """The meetings query for the given cells (the audit's, over the cells a committee had in
    the period — ``organisations.descendants_during``)."""
    lo, hi = _year_bounds(year)
    kinds = [MeetingKind.REGULAR, MeetingKind.THEMATIC] + ([MeetingKind.COMMITTEE] if committee else [])
    return select(*_row_columns(now)).where(
        Meeting.cell_id.in_(list(cell_ids)), Meeting.starts_at >= lo, Meeting.starts_at < hi, Meeting.kind.in_(kinds))


def evaluate_cells(session: Session, cells: Sequence[CellInfo], rows: list[Row], year: int, now: dt.datetime, *,
                   committee: bool = True) -> dict[int, Report]:
    """Reports from rows already fetched by :func:`cells_statement` (the audit keeps the rows)."""
    return _evaluate_all(session, [(c[0], c[4], c[5] and committee) for c in cells], rows, year, now)


def subtree_cells(session: Session, org: Organisation) -> list[CellInfo]:
    """(id, name, code, path, created_on, has_committee) of every cell under ``org``, by path."""
    return [cast(CellInfo, tuple(r)) for r in session.connection().execute(
        select(Organisation.id, Organisation.name, Organisation.code, Organisation.path, Organisation.created_on,
               Organisation.has_committee)
        .where(subtree_filter(org), Organisation.kind == OrgKind.CELL).order_by(Organisation.path))]


def for_subtree(session: Session, org: Organisation, year: int, now: dt.datetime,
                cells: Sequence[tuple[int, str, str, str, dt.date, bool]] | None = None, *,
                committee: bool = True) -> dict[int, Report]:
    """Every cell under ``org``: cells, meetings and overrides — three queries in all
    (two when the caller already has the cells from :func:`subtree_cells`).
    ``committee=False`` leaves the chi ủy meetings out (``Month.committee`` is then None)."""
    if cells is None:
        cells = subtree_cells(session, org)
    if not cells:
        return {}
    return evaluate_subtree(session, org, cells, subtree_rows(session, org, year, now, committee=committee), year,
                            now, committee=committee)


def subtree_rows(session: Session, org: Organisation, year: int, now: dt.datetime, *,
                 committee: bool = True) -> list[Row]:
    return _rows(session, subtree_statement(org, year, now, committee=committee))


def evaluate_subtree(session: Session, org: Organisation, cells: Sequence[tuple[int, str, str, str, dt.date, bool]],
                     rows: list[Row], year: int, now: dt.datetime, *, committee: bool = True) -> dict[int, Report]:
    """Reports from rows already fetched by :func:`subtree_rows` (the audit keeps the rows)."""
    subtree = select(Organisation.id).where(subtree_filter(org)).scalar_subquery()
    overrides = (select(CellScheduleSettings.cell_id, CellScheduleSettings.min_regular_minutes,
                        CellScheduleSettings.min_combined_minutes)
                 .where(CellScheduleSettings.cell_id.in_(subtree)))
    return _evaluate_all(session, [(c[0], c[4], c[5] and committee) for c in cells], rows, year, now, overrides)


def subtree_statement(org: Organisation, year: int, now: dt.datetime, *, committee: bool = True) -> AnySelect:
    """The meetings query of :func:`for_subtree` (bench/audit.py times it bare)."""
    lo, hi = _year_bounds(year)
    kinds = [MeetingKind.REGULAR, MeetingKind.THEMATIC] + ([MeetingKind.COMMITTEE] if committee else [])
    # "cell_id IN (the subtree)" lets the database walk the (cell_id, starts_at) index cell by cell.
    subtree = select(Organisation.id).where(subtree_filter(org)).scalar_subquery()
    return select(*_row_columns(now)).where(
        Meeting.cell_id.in_(subtree), Meeting.starts_at >= lo, Meeting.starts_at < hi, Meeting.kind.in_(kinds))
