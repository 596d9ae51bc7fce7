"""The higher committees' audit of meeting regularity, per cell and per level of the tree.

For a committee's subtree and a year (or one quarter of it), per cell:

* the **regular meeting of each month** — *on time*, *late* or *missing* — as the schedule
  compliance reports judge it (``planning.compliance``). A month's meeting is
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

**History** (decision 11; ARCHITECTURE.md: history resolves as of its time). The cells are
those that stood under the committee on some day of the period, from the dated parent links
(``organisations.descendants_during``), never today's tree; each month, quarter and meeting
counts for the committee — and for the child of it — the cell stood under on the day that
decides it: the day the meeting was held, else the period's last day (today for a period not
over). A cell moved from commune X to commune Y on 1 July is X's until June and Y's from July,
in both communes' audits, their exports and the province's totals; the months that belonged
elsewhere show as "—". The year's flags and away members count once, for the committee that
had the cell last in the period. Each child's row sums what fell to it, so a cell that moved
counts in two children's "cells" and once in the total.

Read from the cell-month figures (``evaluation.monthly``), never the meetings and roster lines
themselves: the months are judged as ``planning.compliance`` judges them (a test compares the
two), with "now", the tree and the cells' duration minimums applied here. A cell under one
child for the whole period is summed by the database (:class:`Plan`, :func:`statements`); the
others month by month. A province of 3,000 cells is four queries (docs/evaluation.md §4).
:func:`statements` returns them so that the benchmark can time them bare.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import heapq
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from itertools import islice
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    bindparam,
    case,
    distinct,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import QueryableAttribute, Session

from ..foundation.base import LOCAL_TZ, UTCDateTime
from ..foundation.sqltime import (
    AnySelect,
    among,
    id_pair_values,
    id_pairs,
    minutes_between,
    plain_rows,
)
from ..organisation import organisations
from ..organisation.members import MemberPeriod, Membership, PeriodKind
from ..organisation.organisations import Organisation, OrgKind, Span
from ..planning import compliance
from ..planning.compliance import Mark
from ..planning.meetings import Meeting, MeetingKind
from ..planning.schedules import MIN_COMBINED_MINUTES, MIN_REGULAR_MINUTES, CellScheduleSettings
from ..proceedings.attendance import AttendanceMode, AttendanceRecord, AttendanceStatus
from ..proceedings.minutes import MinutesVersion
from . import monthly
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
    #: The cell stood under another committee then (a restructure): not this audit's month.
    OUTSIDE = "outside"

    @property
    def label(self) -> str:
        return {"on_time": "Đúng hạn", "late": "Muộn", "missing": "Thiếu", "not_due": "Chưa đến hạn",
                "outside": "—"}[self.value]


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
        # Written out field by field: a province adds thousands of these (a test checks that
        # every field is here).
        self.cells += other.cells
        self.months_due += other.months_due
        self.on_time += other.on_time
        self.late += other.late
        self.missing += other.missing
        self.too_short += other.too_short
        self.quarters_due += other.quarters_due
        self.thematic_held += other.thematic_held
        self.thematic_missing += other.thematic_missing
        self.held += other.held
        self.no_roster += other.no_roster
        self.minutes_adopted += other.minutes_adopted
        self.minutes_prompt += other.minutes_prompt
        self.minutes_days += other.minutes_days
        self.expected += other.expected
        self.present += other.present
        self.present_online += other.present_online
        self.away_members += other.away_members
        self.away_expected += other.away_expected
        self.away_online += other.away_online
        self.warnings += other.warnings
        self.removal_reviews += other.removal_reviews

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




#: A tally's values in field order, as one tuple (column sums over many tallies).
_tally_values = operator.attrgetter(*(f.name for f in fields(Tally)))


@dataclass(slots=True)
class MonthMark:
    month: int
    status: Regular
    cell: compliance.Cell
    #: Days after the planned day (late meetings), else None.
    late_days: int | None = None
    #: The child of the audited committee the cell stood under for this month (None: outside).
    child_id: int | None = None


@dataclass
class CellAudit:
    id: int
    name: str
    code: str
    path: str
    #: The child of the audited committee the cell stood under last in the period (itself for
    #: a direct child).
    child_id: int
    tally: Tally = field(default_factory=Tally)
    #: When the cell stood under the audited committee in the period, and through which child.
    spans: list[Span] = field(default_factory=list)
    #: What fell to each child the cell stood under (one entry unless it moved).
    by_child: dict[int, Tally] = field(default_factory=dict)
    #: The month and quarter marks, or (for a cell audited from its summary) how to make them
    #: when a page or an export first asks: a province's page needs only the tallies.
    #: The month and quarter marks: kept for the cells audited month by month (``Plan``), not
    #: for those the database summed (a province's page needs only the tallies).
    marks: list[MonthMark] | None = None
    quarter_marks: list[tuple[int, Mark, compliance.Cell]] | None = None

    @property
    def months(self) -> list[MonthMark]:
        assert self.marks is not None, "marks kept only for detailed cells: audit(..., detail_all=True)"
        return self.marks

    @property
    def quarters(self) -> list[tuple[int, Mark, compliance.Cell]]:
        assert self.quarter_marks is not None, "marks kept only for detailed cells: audit(..., detail_all=True)"
        return self.quarter_marks


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


#: Position of each Tally field in a fast cell's row (cell id and child first).
_ROW_AT = {f.name: i + 2 for i, f in enumerate(fields(Tally))}


@dataclass
class Audit:
    """An audit's figures. Its cells (:attr:`cells`, :meth:`cell`) are made when first asked
    for: a province's page shows its communes' rows and the few cells needing attention
    (:func:`cells_with_gaps`), so the thousands of cells the database summed stay the rows it
    returned (``fast_rows``) unless an export or a cell's page reads them."""

    org: Organisation
    year: int
    quarter: int | None
    months: list[int]
    children: list[tuple[Organisation, Tally]]
    total: Tally
    trend: list[MonthTrend]
    #: Per child of the audited committee, per month of the period: cells whose regular
    #: meeting was due, and held (the month grid of a committee's children).
    due: dict[int, list[int]] = field(default_factory=dict)
    held: dict[int, list[int]] = field(default_factory=dict)
    #: The cells audited month by month, already made.
    detailed: dict[int, CellAudit] = field(default_factory=dict, repr=False)
    #: The cells the database summed: (cell id, child id, the Tally's fields in order).
    fast_rows: Sequence[Sequence[Any]] = field(default=(), repr=False)
    #: What the cells are (id, name, code, path, …) and when they stood under the committee.
    info: dict[int, compliance.CellInfo] = field(default_factory=dict, repr=False)
    spans_of: dict[int, list[Span]] = field(default_factory=dict, repr=False)
    _made: dict[int, CellAudit] = field(default_factory=dict, repr=False)
    _fast_at: dict[int, Sequence[Any]] | None = field(default=None, repr=False)

    @property
    def quarters(self) -> list[int]:
        return [self.quarter] if self.quarter else [1, 2, 3, 4]

    def _fast(self, row: Sequence[Any]) -> CellAudit:
        cell_id = row[0]
        made = self._made.get(cell_id)
        if made is None:
            child, t = row[1], Tally(*row[2:])
            _, name, code, path, _created_on, _committee = self.info[cell_id]
            made = self._made[cell_id] = CellAudit(cell_id, name, code, path, child, t, self.spans_of[cell_id],
                                                   {child: t})
        return made

    def cell(self, cell_id: int) -> CellAudit | None:
        """One cell of the audit, or None."""
        found = self.detailed.get(cell_id)
        if found is not None or not self.fast_rows:
            return found
        if self._fast_at is None:
            self._fast_at = {row[0]: row for row in self.fast_rows}
        row = self._fast_at.get(cell_id)
        return None if row is None else self._fast(row)

    @functools.cached_property
    def cells(self) -> list[CellAudit]:
        """Every cell, by path."""
        made = [*self.detailed.values(), *map(self._fast, self.fast_rows)]
        return sorted(made, key=lambda ca: ca.path)


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


def _counts(*conditions: ColumnElement[bool] | QueryableAttribute[bool]) -> list[ColumnElement[int]]:
    """COUNT(*) FILTER (WHERE …) per condition: one pass over the roster lines (SQLite ≥ 3.30,
    PostgreSQL), quicker than SUM(CASE …) on SQLite."""
    return [func.count().filter(c) for c in conditions]


@dataclass
class Plan:
    """Which cells an audit covers and how each is read: ``fast`` cells stood under one child
    of the audited committee (not themselves) for the whole period and existed before it, so
    the database sums their months and groups them by child; the ``detailed`` ones — moved or
    created within the period, a committee's own cells, a cell's page, an export — are judged
    month by month from their cell-month rows, their marks kept."""

    spans_of: dict[int, list[Span]]
    cells: list[compliance.CellInfo]
    fast: dict[int, int]
    detailed: list[int]


def plan(session: Session, org: Organisation, year: int, quarter: int | None, *, only_cell: int | None = None,
         detail_all: bool = False) -> Plan:
    lo, hi = bounds(year, quarter)
    first_day, last_day = lo.date(), (hi - dt.timedelta(days=1)).date()
    spans_of: dict[int, list[Span]] = {}
    cells: list[compliance.CellInfo] = []
    if org.kind == OrgKind.CELL:
        if only_cell is None or only_cell == org.id:
            cells = compliance.cells_info(session, [org.id])
            spans_of = {org.id: [Span(first_day, last_day, org.id)]} if cells else {}
    else:
        # The cells below and their spans, walked by the database (one statement).
        rows = plain_rows(session, organisations.cells_during_statement(org.id, first_day, last_day))
        if only_cell is not None:
            rows = [row for row in rows if row[0] == only_cell]
        as_text = bool(rows) and isinstance(rows[0][4], str)  # SQLite: dates as text, 0/1
        dates: dict[Any, dt.date] = {}

        def day(value: Any) -> dt.date:  # a few distinct dates: each converted once
            found = dates.get(value)
            if found is None:
                found = dates[value] = dt.date.fromisoformat(value) if isinstance(value, str) else value
            return found

        # Most cells share their span (the whole period, under one child): one Span each,
        # looked up by the row's last three values as the driver returned them.
        shared: dict[Sequence[Any], Span] = {}
        for row in rows:
            cell_id, key = row[0], row[6:]
            span = shared.get(key)
            if span is None:
                through, start, end = key
                span = shared[key] = Span(day(start), day(end), through)
            spans = spans_of.get(cell_id)
            if spans is None:
                spans_of[cell_id] = [span]
                cells.append((cell_id, row[1], row[2], row[3], day(row[4]), bool(row[5])) if as_text else row[:6])
            else:
                spans.append(span)
    fast: dict[int, int] = {}
    detailed: list[int] = []
    if detail_all or only_cell is not None:
        detailed = [c[0] for c in cells]
    else:
        for cell_id, _name, _code, _path, created_on, _committee in cells:
            spans = spans_of[cell_id]
            if (len(spans) == 1 and (whole := spans[0]).start <= first_day and whole.end >= last_day
                    and whole.child_id != cell_id and created_on <= first_day):
                fast[cell_id] = whole.child_id
            else:
                detailed.append(cell_id)
    return Plan(spans_of, cells, fast, detailed)


def statements(p: Plan, year: int, quarter: int | None, now: dt.datetime, dialect: str) -> dict[str, AnySelect]:
    """The queries of an audit beyond the dated links and the cells themselves (also timed
    bare by bench/audit.py): for the fast cells, per cell its whole :class:`Tally` (the
    period's sums of its months, the months held on time, late, too short and still
    scheduled, the quarters' thematic sessions, its away members and flags — the database
    does the arithmetic, the page only reads the row) and per child and month, held and
    scheduled cells and the roster sums; for the detailed cells their cell-month rows,
    duration minimums, flags and away members."""
    lo, hi = bounds(year, quarter)
    first_day, last_day = lo.date(), (hi - dt.timedelta(days=1)).date()
    today = now.astimezone(LOCAL_TZ).date()
    st = CellScheduleSettings
    out: dict[str, AnySelect] = {}
    if p.fast:
        # The statements' shape is built once per period and dialect (a few milliseconds of
        # SQLAlchemy each time otherwise); the cells, "now" and today are their parameters.
        quarters = [quarter] if quarter else [1, 2, 3, 4]
        n_due = len([m for m in period_months(quarter) if dt.date(year, m, 1) <= today])
        due_quarters = tuple(dt.date(year, q * 3 - 2, 1) <= today for q in quarters)
        cells, grid = _fast_statements(dialect, year, quarter, n_due, due_quarters)
        values = {"now": now, "today": today}
        pairs = id_pair_values("fast", p.fast, dialect)
        out["cells"] = cells.params(values, **pairs)
        out["grid"] = grid.params(values, **pairs)
    if p.detailed:
        out["months"] = monthly.read_statement(p.detailed, first_day, last_day)
        out["overrides"] = (select(st.cell_id, st.min_regular_minutes, st.min_combined_minutes)
                            .where(among(st.cell_id, p.detailed)))
        out["flags"] = _flags_of(lambda column: among(column, p.detailed), year)
        out["away"] = _away_of(lambda column: among(column, p.detailed), first_day, last_day)
    return out


def _flags_of(of_cells: Callable[[Any], ColumnElement[bool]], year: int) -> AnySelect:
    """Per cell and member, the highest flag of the year (a warning or more)."""
    return (select(MemberFlag.cell_id, MemberFlag.member_id, func.max(MemberFlag.level).label("level"))
            .where(of_cells(MemberFlag.cell_id), MemberFlag.year == year, MemberFlag.level >= Level.WARNING)
            .group_by(MemberFlag.cell_id, MemberFlag.member_id))


def _away_of(of_cells: Callable[[Any], ColumnElement[bool]], first_day: dt.date, last_day: dt.date) -> AnySelect:
    """Per cell, its members away (an away period) at some time of the period."""
    return (select(Membership.cell_id, func.count(distinct(MemberPeriod.member_id)).label("members"))
            .join(MemberPeriod, MemberPeriod.member_id == Membership.member_id)
            .where(of_cells(Membership.cell_id), Membership.start_on <= last_day,
                   or_(Membership.end_on.is_(None), Membership.end_on >= first_day),
                   MemberPeriod.kind == PeriodKind.AWAY, MemberPeriod.start_on <= last_day,
                   or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= first_day))
            .group_by(Membership.cell_id))


@functools.lru_cache(maxsize=64)
def _fast_statements(dialect: str, year: int, quarter: int | None, n_due: int, due_quarters: tuple[bool, ...]
                     ) -> tuple[AnySelect, AnySelect]:
    """The fast cells' two statements (see :func:`statements`), with the parameters ``now``,
    ``today`` and the (cell, child) pairs ``fast`` (``sqltime.id_pair_values``), the same for both.
    ``n_due``: the period's months begun by today; ``due_quarters``: which quarters have."""
    lo, hi = bounds(year, quarter)
    first_day, last_day = lo.date(), (hi - dt.timedelta(days=1)).date()
    cm, st = monthly.CellMonth, CellScheduleSettings
    in_period = and_(cm.month >= first_day, cm.month <= last_day)
    now, today = bindparam("now", type_=UTCDateTime()), bindparam("today", type_=Date())
    # The fast cells and their children, bound once (a province: 3,000 pairs) and read by
    # every part of the statement.
    pairs, cell, child = id_pairs(None, dialect, name="fast")
    fast = select(cell.label("cell_id"), child.label("child_id")).select_from(pairs).cte("fast")

    def of_fast(column: ColumnElement[int] | QueryableAttribute[int]) -> ColumnElement[bool]:
        return column.in_(select(fast.c.cell_id))

    need = case((cm.regular_combined, func.coalesce(func.nullif(st.min_combined_minutes, 0), MIN_COMBINED_MINUTES)),
                else_=func.coalesce(func.nullif(st.min_regular_minutes, 0), MIN_REGULAR_MINUTES))
    held = cm.regular_id.is_not(None)
    late = cm.regular_late_days > LATE_AFTER_DAYS
    scheduled = and_(cm.regular_id.is_(None), cm.regular_pending_id.is_not(None),
                     or_(cm.regular_open, cm.regular_last_at > now), cm.month <= today)
    tcode = case((cm.thematic_id.is_not(None), 3),
                 (cm.thematic_pending_id.is_not(None),
                  case((or_(cm.thematic_open, cm.thematic_last_at > now), 2), else_=1)), else_=0)
    quarters = [quarter] if quarter else [1, 2, 3, 4]
    # Per cell, the period's sums and counts of its months and a code per quarter …
    m = (select(cm.cell_id, *[func.sum(getattr(cm, name)).label(name) for name, _ in _SUMS],
                func.count().filter(and_(held, or_(cm.regular_late_days.is_(None), ~late))).label("on_time"),
                func.count().filter(and_(held, late)).label("late"),
                func.count().filter(and_(held, cm.regular_minutes < need)).label("too_short"),
                func.count().filter(scheduled).label("scheduled"),
                *[func.max(case((and_(cm.month >= dt.date(year, q * 3 - 2, 1), cm.month <= dt.date(year, q * 3, 1)),
                                 tcode))).label(f"q{q}") for q in quarters])
         .select_from(cm).outerjoin(st, st.cell_id == cm.cell_id)
         .where(of_fast(cm.cell_id), in_period).group_by(cm.cell_id)).subquery("m")
    flags = _flags_of(of_fast, year).subquery("f")
    flagged = (select(flags.c.cell_id, func.count().filter(flags.c.level < Level.REMOVAL_REVIEW).label("warnings"),
                      func.count().filter(flags.c.level >= Level.REMOVAL_REVIEW).label("reviews"))
               .group_by(flags.c.cell_id)).subquery("fl")
    away = _away_of(of_fast, first_day, last_day).subquery("aw")
    # … and, from those, the cell's whole tally in Tally's field order (one row per fast
    # cell, with the child it stood under: nothing left to the page but to read it).
    months_due = n_due - func.coalesce(m.c.scheduled, 0)
    on_time, late_ = func.coalesce(m.c.on_time, 0), func.coalesce(m.c.late, 0)
    thematic_held = sum((case((m.c[f"q{q}"] == 3, 1), else_=0) for q in quarters), start=literal(0))
    thematic_missing = sum((case((func.coalesce(m.c[f"q{q}"], 0).in_([0, 1]) if is_due else m.c[f"q{q}"] == 1, 1),
                                 else_=0) for q, is_due in zip(quarters, due_quarters, strict=True)),
                           start=literal(0))

    def total(name: str) -> ColumnElement[int]:
        return func.coalesce(m.c[name], 0)

    cells = (
        select(fast.c.cell_id, fast.c.child_id, literal(1), months_due, on_time, late_, months_due - on_time - late_,
               total("too_short"), thematic_held + thematic_missing, thematic_held, thematic_missing,
               total("held"), total("no_roster"), total("minutes_adopted"), total("minutes_prompt"),
               total("minutes_days"), total("expected"), total("present"), total("present_online"),
               func.coalesce(away.c.members, 0), total("away_expected"), total("away_online"),
               func.coalesce(flagged.c.warnings, 0), func.coalesce(flagged.c.reviews, 0))
        .select_from(fast).outerjoin(m, m.c.cell_id == fast.c.cell_id)
        .outerjoin(flagged, flagged.c.cell_id == fast.c.cell_id).outerjoin(away, away.c.cell_id == fast.c.cell_id))
    pairs, cell, child = id_pairs(None, dialect, name="fast")
    grid = (
        select(child, cm.month, func.count().filter(held), func.count().filter(scheduled),
               func.sum(cm.expected), func.sum(cm.present), func.sum(cm.away_expected), func.sum(cm.away_online))
        .select_from(pairs).join(cm, cm.cell_id == cell).where(in_period).group_by(child, cm.month))
    return cells, grid


def children_statement(child_ids: Sequence[int]) -> Select[Organisation]:
    """The audited committee's children that rows fell to, by name (also timed bare)."""
    return select(Organisation).where(among(Organisation.id, child_ids)).order_by(Organisation.name)


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


def cells_of_period(session: Session, org: Organisation, year: int, quarter: int | None) -> dict[int, list[Span]]:
    """The cells that stood under ``org`` in the period, with when and through which child
    (a cell audits itself for the whole period)."""
    lo, hi = bounds(year, quarter)
    first, last = lo.date(), (hi - dt.timedelta(days=1)).date()
    if org.kind == OrgKind.CELL:
        return {org.id: [Span(first, last, org.id)]}
    found = organisations.descendants_during(session, org, first, last)
    kinds = dict(session.execute(select(Organisation.id, Organisation.kind).where(among(Organisation.id, found))
                                 ).all()) if found else {}
    return {i: spans for i, spans in found.items() if kinds.get(i) == OrgKind.CELL}


def _child_on(spans: Sequence[Span], day: dt.date) -> int | None:
    for span in spans:
        if span.covers(day):
            return span.child_id
    return None


def _deciding_day(cell: compliance.Cell, period_end: dt.date, today: dt.date) -> dt.date:
    """The day that decides whose a month or quarter is: the day its meeting was held, else
    the period's last day (today, while the period runs)."""
    return cell.held_on or min(period_end, max(today, period_end.replace(day=1)))


#: Shared, never modified: the compliance cells of months and quarters without a meeting.
_NOT_APPLICABLE = compliance.Cell(Mark.NOT_APPLICABLE)
_NOT_YET = compliance.Cell(Mark.NOT_YET)
_MISSING = compliance.Cell(Mark.MISSING)
#: Positions of a cell_months row's columns, as the driver returns them (key first).
_AT = {name: i for i, name in enumerate(("cell_id", "month", *monthly.FIELDS))}
_SUMS = tuple((name, _AT[name]) for name in ("held", "no_roster", "expected", "present", "present_online",
                                             "away_expected", "away_online", "minutes_adopted", "minutes_prompt",
                                             "minutes_days"))


def _date(value: Any) -> dt.date | None:
    return value if value is None or isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _day(value: Any) -> dt.date:
    """A date the database never leaves empty (as text on SQLite)."""
    day = _date(value)
    assert day is not None
    return day


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _pending(rows: Sequence[Sequence[Any]], part: str, now: dt.datetime) -> compliance.Cell | None:
    """Compliance's judgement of a month or quarter with nothing held, from the rows' meetings
    neither held nor cancelled: one still ahead (or open) is *scheduled*, else *unrecorded*."""
    pid, pon, lid, lon, lat, opened = (_AT[f"{part}_pending_id"], _AT[f"{part}_pending_on"], _AT[f"{part}_last_id"],
                                       _AT[f"{part}_last_on"], _AT[f"{part}_last_at"], _AT[f"{part}_open"])
    waiting = [r for r in rows if r[pid] is not None]
    if not waiting:
        return None
    for r in waiting:
        if r[opened]:
            day = _date(r[pon])
            return compliance.Cell(Mark.SCHEDULED, r[pid], note=f"ngày {day:%d/%m}")
        if _instant(r[lat]) > now:  # the last one is still ahead: named, unless it is the only one
            day = _date(r[pon] if r[lid] == r[pid] else r[lon])
            return compliance.Cell(Mark.SCHEDULED, r[lid], note=f"ngày {day:%d/%m}")
    first = waiting[0]
    day = _date(first[pon])
    return compliance.Cell(Mark.UNRECORDED, first[pid], note=f"ngày {day:%d/%m}: chưa ghi giờ họp thực tế")


def _regular(row: Sequence[Any] | None, month_start: dt.date, month_end: dt.date, created_on: dt.date,
             today: dt.date, now: dt.datetime, minimums: tuple[int, int]) -> compliance.Cell:
    """The month's regular meeting as ``compliance._judge`` sees it, from the month's row."""
    if month_end < created_on:
        return _NOT_APPLICABLE
    if row is not None:
        meeting_id = row[_AT["regular_id"]]
        if meeting_id is not None:
            minutes = row[_AT["regular_minutes"]]
            held_on, planned_on = _date(row[_AT["regular_on"]]), _date(row[_AT["regular_planned_on"]])
            if minutes is not None:
                need = minimums[1] if row[_AT["regular_combined"]] else minimums[0]
                if minutes < need:
                    return compliance.Cell(Mark.TOO_SHORT, meeting_id, minutes,
                                           f"{minutes} phút, dưới {need} phút (HD 42)", held_on, planned_on)
            return compliance.Cell(Mark.HELD, meeting_id, minutes, "", held_on, planned_on)
        waiting = _pending([row], "regular", now)
        if waiting is not None:
            return waiting
    return _NOT_YET if month_start > today else _MISSING


def _thematic(rows: Sequence[Sequence[Any]], quarter_start: dt.date, quarter_end: dt.date, created_on: dt.date,
              today: dt.date, now: dt.datetime) -> compliance.Cell:
    """The quarter's thematic session as compliance judges it: the longest held, from the rows
    of the quarter's months."""
    if quarter_end < created_on:
        return _NOT_APPLICABLE
    best = None
    tid, tmin = _AT["thematic_id"], _AT["thematic_minutes"]
    for r in rows:
        if r[tid] is not None and (best is None or (r[tmin] or 0) > (best[tmin] or 0)):
            best = r
    if best is not None:
        return compliance.Cell(Mark.HELD, best[tid], best[tmin], "", _date(best[_AT["thematic_on"]]))
    waiting = _pending(rows, "thematic", now)
    if waiting is not None:
        return waiting
    return _NOT_YET if quarter_start > today else _MISSING


def _month_child(spans: Sequence[Span], start: dt.date, end: dt.date) -> tuple[bool, int | None]:
    """Whether the month falls to one child (or to none) as a whole, and which."""
    covering = [s for s in spans if s.start <= end and s.end >= start]
    if not covering:
        return True, None
    if len(covering) == 1 and covering[0].start <= start and covering[0].end >= end:
        return True, covering[0].child_id
    return False, None


def audit(session: Session, org: Organisation, year: int, quarter: int | None, now: dt.datetime, *,
          only_cell: int | None = None, detail_all: bool = False) -> Audit:
    """The audit of ``org``'s cells of the period (see the module docstring); ``only_cell``
    restricts it to one of them (the cell's page as seen from ``org``). ``detail_all`` keeps
    every cell's month and quarter marks (the exports; :class:`Plan`)."""
    monthly.settle(session)  # this transaction's own writes, before the rows are read
    months = period_months(quarter)
    quarters = [quarter] if quarter else [1, 2, 3, 4]
    p = plan(session, org, year, quarter, only_cell=only_cell, detail_all=detail_all)
    spans_of, cells = p.spans_of, p.cells
    results = {name: plain_rows(session, stmt) for name, stmt in
               statements(p, year, quarter, now, session.get_bind().dialect.name).items()} if cells else {}
    away = dict(results.get("away", ()))
    default = (MIN_REGULAR_MINUTES, MIN_COMBINED_MINUTES)
    minimums = {cell_id: (regular or MIN_REGULAR_MINUTES, combined or MIN_COMBINED_MINUTES)
                for cell_id, regular, combined in results.get("overrides", ())}
    by_cell: dict[int, dict[int, Sequence[Any]]] = {}
    for row in results.get("months", ()):
        month = _date(row[1])
        assert month is not None
        by_cell.setdefault(row[0], {})[month.month] = row

    today = now.astimezone(LOCAL_TZ).date()
    starts = {m: dt.date(year, m, 1) for m in range(1, 13)}
    month_end = {m: (dt.date(year + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)) for m in range(1, 13)}
    index = {m: i for i, m in enumerate(months)}
    trend = {m: MonthTrend(m) for m in months}
    due: dict[int, list[int]] = {}
    held: dict[int, list[int]] = {}

    def grid(child: int) -> tuple[list[int], list[int]]:
        if child not in due:
            due[child], held[child] = [0] * len(months), [0] * len(months)
        return due[child], held[child]

    # The fast cells, grouped by child by the database: the grid's and the trend's months.
    eligible = [i for i, m in enumerate(months) if starts[m] <= today]
    for child, count in Counter(p.fast.values()).items():
        cdue, _ = grid(child)
        for i in eligible:
            cdue[i] = count
    for child, month, n_held, n_scheduled, expected, present, away_expected, away_online in results.get("grid", ()):
        i = index[_day(month).month]
        cdue, cheld = grid(child)
        cdue[i] -= n_scheduled
        cheld[i] += n_held
        point = trend[months[i]]
        point.expected += expected or 0
        point.present += present or 0
        point.away_expected += away_expected or 0
        point.away_online += away_online or 0
    # The fast cells' tallies, computed by the database in Tally's field order: kept as its
    # rows (Audit.cells makes them into cells when asked), grouped by child to be summed.
    fast_rows = results.get("cells", ())
    columns: dict[int, list[Sequence[Any]]] = {}
    for row in fast_rows:
        rows_of = columns.get(row[1])
        if rows_of is None:
            rows_of = columns[row[1]] = []
        rows_of.append(row)
    audits: dict[int, CellAudit] = {}

    LATE, MISSING, NOT_DUE, OUTSIDE = Regular.LATE, Regular.MISSING, Regular.NOT_DUE, Regular.OUTSIDE  # noqa: N806
    HELD, TOO_SHORT, UNRECORDED = Mark.HELD, Mark.TOO_SHORT, Mark.UNRECORDED  # noqa: N806
    conn = session.connection()
    for cell_id, name, code, path, created_on, _committee in cells:
        if cell_id in p.fast:
            continue
        created_on = _day(created_on)
        spans = spans_of[cell_id]
        ca = audits[cell_id] = CellAudit(cell_id, name, code, path, spans[-1].child_id, spans=spans, marks=[],
                                         quarter_marks=[])
        for span in spans:
            ca.by_child.setdefault(span.child_id, Tally(cells=1))
        rows = by_cell.get(cell_id, {})
        mins = minimums.get(cell_id, default)
        for i, m in enumerate(months):
            month_row = rows.get(m)
            cell = _regular(month_row, starts[m], month_end[m], created_on, today, now, mins)
            holder = _child_on(spans, _deciding_day(cell, month_end[m], today))
            if holder is None:
                mark = MonthMark(m, OUTSIDE, cell)
            else:
                mark = _month_mark(m, cell)
                mark.child_id = holder
            ca.months.append(mark)
            status = mark.status
            if holder is not None and status is not NOT_DUE:
                t = ca.by_child[holder]
                t.months_due += 1
                cdue, cheld = grid(holder)
                cdue[i] += 1
                if status is MISSING:
                    t.missing += 1
                else:
                    cheld[i] += 1
                    if status is LATE:
                        t.late += 1
                    else:
                        t.on_time += 1
                    if cell.mark is TOO_SHORT:
                        t.too_short += 1
            if month_row is None:
                continue
            # What took place this month, for the child the cell stood under on each day.
            one, owner = _month_child(spans, starts[m], month_end[m])
            if one:
                parts: list[tuple[int, Sequence[Any]]] = [(owner, month_row)] if owner is not None else []
            else:
                parts = [(owner, [figures.get(n) for n in _AT])
                         for day, figures in monthly.by_meeting(conn, cell_id, starts[m])
                         if (owner := _child_on(spans, day)) is not None]
            point = trend[m]
            for owner, values in parts:
                t = ca.by_child[owner]
                for field_name, at in _SUMS:
                    setattr(t, field_name, getattr(t, field_name) + values[at])
                point.expected += values[_AT["expected"]]
                point.present += values[_AT["present"]]
                point.away_expected += values[_AT["away_expected"]]
                point.away_online += values[_AT["away_online"]]
        for q in quarters:
            qrows = [rows[m] for m in (q * 3 - 2, q * 3 - 1, q * 3) if m in rows]
            thematic = _thematic(qrows, starts[q * 3 - 2], month_end[q * 3], created_on, today, now)
            holder = _child_on(spans, _deciding_day(thematic, month_end[q * 3], today))
            if holder is None:
                ca.quarters.append((q, Mark.NOT_APPLICABLE, thematic))
                continue
            ca.quarters.append((q, thematic.mark, thematic))
            if thematic.mark is HELD or thematic.mark is TOO_SHORT:
                t = ca.by_child[holder]
                t.quarters_due += 1
                t.thematic_held += 1
            elif thematic.mark is Mark.MISSING or thematic.mark is UNRECORDED:
                t = ca.by_child[holder]
                t.quarters_due += 1
                t.thematic_missing += 1
        # The year's figures of the cell as a whole count once, for the child that had it last.
        ca.by_child[ca.child_id].away_members = away.get(cell_id, 0)
    for cell_id, _member_id, level in results.get("flags", ()):
        ca = audits[cell_id]
        t = ca.by_child[ca.child_id]
        if level >= Level.REMOVAL_REVIEW:
            t.removal_reviews += 1
        else:
            t.warnings += 1
    for i, m in enumerate(months):
        trend[m].due = sum(d[i] for d in due.values())
        trend[m].held = sum(h[i] for h in held.values())

    # Each child's row sums what fell to it; the total is the children's sum with each cell
    # counted once (a cell that moved counts in two children's "cells").
    for ca in audits.values():
        if len(ca.by_child) == 1:
            ca.tally = next(iter(ca.by_child.values()))
        else:
            for t in ca.by_child.values():
                ca.tally.add(t)
            ca.tally.cells = 1
        for child, t in ca.by_child.items():
            if child not in columns:
                columns[child] = []
            columns[child].append((ca.id, child, *_tally_values(t)))
    # Column sums of the rows (cell id and child first, then the Tally's fields).
    by_child = {child: Tally(*[sum(column) for column in islice(zip(*rows, strict=True), 2, None)])
                for child, rows in columns.items()}
    total = Tally()
    for t in by_child.values():
        total.add(t)
    total.cells = len(audits) + len(fast_rows)
    child_orgs = [] if org.kind == OrgKind.CELL else list(session.scalars(children_statement(list(by_child))))
    return Audit(org, year, quarter, months, [(c, by_child[c.id]) for c in child_orgs], total,
                 [trend[m] for m in months], due, held, detailed=audits, fast_rows=fast_rows,
                 info={c[0]: c for c in cells} if fast_rows else {}, spans_of=spans_of)


def meeting_figures(session: Session, cell: Organisation, year: int, quarter: int | None,
                    spans: Sequence[Span] | None = None) -> tuple[list[Meeting], dict[int, MeetingFigures], dict[int, int]]:
    """A cell's meetings of the period (every kind but chi ủy) with their roster figures and
    the minutes' delay in minutes: the cell's drill-down page. With ``spans``, only those held
    while the cell stood under the committee the page is seen from."""
    lo, hi = bounds(year, quarter)
    meetings = [m for m in session.scalars(select(Meeting).where(
        Meeting.cell_id == cell.id, Meeting.starts_at >= lo, Meeting.starts_at < hi,
        Meeting.kind != MeetingKind.COMMITTEE).order_by(Meeting.starts_at))
        if spans is None or _child_on(spans, m.local_date) is not None]
    ids = [m.id for m in meetings]
    a = AttendanceRecord
    present = a.status == AttendanceStatus.PRESENT
    online = and_(present, a.mode == AttendanceMode.ONLINE)
    absent = and_(a.expected, a.status == AttendanceStatus.ABSENT)
    conn = session.connection()
    figures = {row[0]: MeetingFigures(*tuple(row)) for row in conn.execute(
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


#: A value of an exported table.
ExportValue = str | int | float | None


def as_rows(result: Audit) -> list[list[ExportValue]]:
    """One row per cell, for CSV and XLSX (header first)."""
    months = result.months
    header: list[ExportValue] = ["Cấp ủy trực thuộc", "Mã chi bộ", "Chi bộ",
                            *[f"Tháng {m}" for m in months],
                            "Thường kỳ đúng hạn", "Thường kỳ muộn", "Thường kỳ thiếu", "Dưới thời lượng",
                            *[f"Chuyên đề quý {q}" for q in result.quarters],
                            "Buổi họp đã diễn ra", "Không có điểm danh", "Biên bản đã thông qua",
                            f"Thông qua trong {PROMPT_MINUTES_DAYS} ngày", "Số ngày TB đến khi thông qua", "Phải dự (lượt)", "Có mặt (lượt)", "Tỷ lệ dự họp (%)",
                            "Đảng viên đi làm ăn xa", "Tỷ lệ tham gia trực tuyến của ĐV đi làm ăn xa (%)",
                            "Cảnh báo 2 tháng", "Xem xét xóa tên"]
    names = {c.id: c.name for c, _ in result.children}
    rows: list[list[ExportValue]] = [header]
    for ca in result.cells:
        t = ca.tally
        rows.append([
            _under(ca, names), ca.code, ca.name, *[mm.status.label for mm in ca.months],
            t.on_time, t.late, t.missing, t.too_short, *[mark.label for _, mark, _ in ca.quarters],
            t.held, t.no_roster, t.minutes_adopted, t.minutes_prompt,
            None if t.minutes_average_days is None else round(t.minutes_average_days, 1),
            t.expected, t.present, _percent(t.attendance_rate), t.away_members, _percent(t.away_online_rate),
            t.warnings, t.removal_reviews,
        ])
    return rows


def _under(ca: CellAudit, names: dict[int, str]) -> str:
    """The child committee a cell stood under, with the dates when it moved in the period."""
    children = list(dict.fromkeys(span.child_id for span in ca.spans))
    if len(children) == 1:
        return names.get(children[0], "")
    return " → ".join(f"{names.get(span.child_id, '')} ({span.start:%d/%m}–{span.end:%d/%m})" for span in ca.spans)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def cells_with_gaps(result: Audit, limit: int = 30) -> Sequence[CellAudit]:
    """The cells needing attention first: missing, late and thematic gaps, then flags. Ranked
    from the database's rows where the cells were summed there (only the chosen ones are
    made into cells)."""
    ranked: list[tuple[tuple[int, int, int, int, str, str], int]] = [
        ((-t.missing, -t.thematic_missing, -t.late, -t.removal_reviews, c.name, c.path), c.id)
        for c in result.detailed.values() if (t := c.tally).gaps or t.removal_reviews]
    missing, thematic, late, reviews = (_ROW_AT[name] for name in ("missing", "thematic_missing", "late",
                                                                  "removal_reviews"))
    info = result.info
    ranked += [((-row[missing], -row[thematic], -row[late], -row[reviews], (i := info[row[0]])[1], i[3]), row[0])
               for row in result.fast_rows if row[missing] or row[thematic] or row[late] or row[reviews]]
    chosen = [result.cell(cell_id) for _, cell_id in heapq.nsmallest(limit, ranked)]
    return [c for c in chosen if c is not None]
