"""Per-cell monthly figures, kept up to date with the facts they summarise.

A committee's audit (``evaluation.regularity``) over a province reads, per cell and month,
what was held and who attended. Summing 760,000 roster lines and judging 40,000 meetings on
every request is what made the province's page slow (issue 18), so the figures are kept in
``cell_months``, one row per cell and local month in which the cell had a regular or thematic
meeting (held, pending or both):

* what took place (open, closed, or its end recorded): how many meetings, how many without a
  roster, the roster counts of those meetings (expected, present, present online, excused,
  unexcused, away expected, away present online) and how soon their minutes were adopted;
* the month's regular meeting as schedule compliance judges it (``planning.compliance``):
  the longest one held (closed or its end recorded), with its day, its planned day and its
  length, else the first and last not yet held (their days, and whether one is open), so that
  "scheduled", "unrecorded" and "missing" are told apart against any "now";
* the same for the thematic session (a thematic meeting or a regular one combined with it).

Nothing in a row depends on the organisation tree, "now" or a cell's duration minimums: the
audit resolves those when it reads (history as of its time: a restructure changes no row).

**Kept in the same transaction** as the facts: every writer of a meeting's date, status, kind,
actual times or existence publishes ``planning.meetings.MeetingChanged``; every change of a
roster line's mark ``proceedings.attendance.RosterChanged``; an adoption of minutes
``proceedings.minutes.MinutesAdopted``. The handlers here note the months concerned as stale;
just before the transaction commits, or when something reads the rows in the same transaction
(:func:`settle`), each stale month is recomputed once from its rosters (a few meetings each).
Data written around the domain (a bulk load, an import by SQL) is brought in by
:func:`rebuild` (``python -m app rebuild-aggregates``), which the migration that created the
table also ran; ``tests/test_monthly.py`` proves that the maintained rows equal a full
recomputation after random marks, amendments, period changes and restructures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Integer, and_, case, delete, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables

from ..foundation import events
from ..foundation.base import LOCAL_TZ, Base, UTCDateTime
from ..foundation.sqltime import AnySelect, among, local_date, minutes_between
from ..planning.meetings import Meeting, MeetingChanged, MeetingKind, MeetingStatus
from ..proceedings.attendance import (
    AttendanceMode,
    AttendanceRecord,
    AttendanceStatus,
    RosterChanged,
)
from ..proceedings.minutes import MinutesAdopted, MinutesVersion

#: Minutes adopted within this many days of the meeting count as prompt.
PROMPT_MINUTES_DAYS = 7


class CellMonth(Base):
    __tablename__ = "cell_months"

    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    #: The first day of the local month.
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    # Regular and thematic meetings that took place (open, closed, or their end recorded).
    held: Mapped[int] = mapped_column(Integer, default=0)
    no_roster: Mapped[int] = mapped_column(Integer, default=0)
    expected: Mapped[int] = mapped_column(Integer, default=0)
    present: Mapped[int] = mapped_column(Integer, default=0)
    present_online: Mapped[int] = mapped_column(Integer, default=0)
    excused: Mapped[int] = mapped_column(Integer, default=0)
    unexcused: Mapped[int] = mapped_column(Integer, default=0)
    away_expected: Mapped[int] = mapped_column(Integer, default=0)
    away_online: Mapped[int] = mapped_column(Integer, default=0)
    minutes_adopted: Mapped[int] = mapped_column(Integer, default=0)
    minutes_prompt: Mapped[int] = mapped_column(Integer, default=0)
    minutes_days: Mapped[int] = mapped_column(Integer, default=0)
    # The month's regular meeting held (the longest), as compliance judges it.
    regular_id: Mapped[int | None] = mapped_column(Integer)
    regular_on: Mapped[dt.date | None] = mapped_column(Date)
    regular_planned_on: Mapped[dt.date | None] = mapped_column(Date)
    #: Days from the planned day to the day held (None: added by hand, nothing planned).
    regular_late_days: Mapped[int | None] = mapped_column(Integer)
    regular_minutes: Mapped[int | None] = mapped_column(Integer)
    regular_combined: Mapped[bool] = mapped_column(Boolean, default=False)
    # Regular meetings neither held nor cancelled: the first and the last, and whether one is open.
    regular_pending_id: Mapped[int | None] = mapped_column(Integer)
    regular_pending_on: Mapped[dt.date | None] = mapped_column(Date)
    regular_last_id: Mapped[int | None] = mapped_column(Integer)
    regular_last_on: Mapped[dt.date | None] = mapped_column(Date)
    regular_last_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    regular_open: Mapped[bool] = mapped_column(Boolean, default=False)
    # The same for thematic sessions (thematic meetings and combined regular ones).
    thematic_id: Mapped[int | None] = mapped_column(Integer)
    thematic_on: Mapped[dt.date | None] = mapped_column(Date)
    thematic_minutes: Mapped[int | None] = mapped_column(Integer)
    thematic_pending_id: Mapped[int | None] = mapped_column(Integer)
    thematic_pending_on: Mapped[dt.date | None] = mapped_column(Date)
    thematic_last_id: Mapped[int | None] = mapped_column(Integer)
    thematic_last_on: Mapped[dt.date | None] = mapped_column(Date)
    thematic_last_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    thematic_open: Mapped[bool] = mapped_column(Boolean, default=False)


#: The columns of a row beyond its key, in table order (what :func:`recompute` returns).
FIELDS = tuple(c.name for c in CellMonth.__table__.columns if c.name not in ("cell_id", "month"))
_COUNTS = FIELDS[:FIELDS.index("regular_id")]

_KINDS = (MeetingKind.REGULAR, MeetingKind.THEMATIC)


def _meetings_statement(where: Any) -> AnySelect:
    """Every regular and thematic meeting matching ``where``, with what a row needs of it."""
    both_actual = and_(Meeting.actual_start_at.is_not(None), Meeting.actual_end_at.is_not(None))
    both_room = and_(Meeting.opened_at.is_not(None), Meeting.closed_at.is_not(None))
    length = case((both_actual, minutes_between(Meeting.actual_start_at, Meeting.actual_end_at)),
                  (both_room, minutes_between(Meeting.opened_at, Meeting.closed_at)), else_=None)
    first = (select(func.min(MinutesVersion.adopted_at)).where(MinutesVersion.meeting_id == Meeting.id)
             .correlate(Meeting).scalar_subquery())
    ended = func.coalesce(Meeting.actual_end_at, Meeting.closed_at, Meeting.starts_at)
    return (select(Meeting.id, Meeting.cell_id, local_date(Meeting.starts_at), Meeting.kind, Meeting.combined_thematic,
                   Meeting.status, length, Meeting.actual_end_at.is_not(None), Meeting.occurrence_on,
                   Meeting.starts_at, minutes_between(ended, first))
            .where(Meeting.kind.in_(_KINDS), where).order_by(Meeting.cell_id, Meeting.starts_at, Meeting.id))


def _roster_statement(meeting_ids: Any) -> AnySelect:
    a = AttendanceRecord
    present = a.status == AttendanceStatus.PRESENT
    online = and_(present, a.mode == AttendanceMode.ONLINE)
    absent = and_(a.expected, a.status == AttendanceStatus.ABSENT)
    return (select(a.meeting_id, func.count(),
                   *[func.count().filter(c) for c in (
                       a.expected, and_(a.expected, present), and_(a.expected, online),
                       and_(absent, a.excused.is_(True)), and_(absent, a.excused.is_not(True)),
                       and_(a.expected, a.away), and_(a.expected, a.away, online))])
            .where(a.meeting_id.in_(meeting_ids)).group_by(a.meeting_id))


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def _as_utc(value: Any) -> dt.datetime:
    instant = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(instant, dt.datetime)
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def _fold(meetings: Sequence[Sequence[Any]], rosters: Mapping[int, Sequence[int]]
          ) -> dict[tuple[int, dt.date], dict[str, Any]]:
    """The rows of the months these meetings fall in (every meeting of those months given)."""
    rows: dict[tuple[int, dt.date], dict[str, Any]] = {}
    closed, opened, cancelled = MeetingStatus.CLOSED.value, MeetingStatus.OPEN.value, MeetingStatus.CANCELLED.value
    regular = MeetingKind.REGULAR.value
    best: dict[tuple[int, dt.date, str], int] = {}
    for (meeting_id, cell_id, day, kind, combined, status, length, ended, planned, starts_at, delay) in meetings:
        day = _as_date(day)
        assert day is not None
        status, kind = str(status), str(kind)
        key = (cell_id, day.replace(day=1))
        row = rows.get(key)
        if row is None:
            row = rows[key] = {name: 0 for name in _COUNTS} | {name: None for name in FIELDS[len(_COUNTS):]}
            row["regular_combined"] = row["regular_open"] = row["thematic_open"] = False
        if status in (opened, closed) or ended:  # took place: records.held_condition
            row["held"] += 1
            lines = rosters.get(meeting_id)
            if lines is None:
                row["no_roster"] += 1
            else:
                for name, value in zip(_COUNTS[2:9], lines[1:], strict=True):
                    row[name] += value
            if delay is not None:
                days = max(0, delay) // 1440
                row["minutes_adopted"] += 1
                row["minutes_days"] += days
                row["minutes_prompt"] += days <= PROMPT_MINUTES_DAYS
        if status == cancelled:
            continue
        parts = ["regular", "thematic"] if kind == regular and combined else ["regular" if kind == regular else "thematic"]
        for part in parts:
            if status == closed or ended:  # held, as compliance judges it: the longest one
                if row[f"{part}_id"] is None or (length or 0) > best[(*key, part)]:
                    best[(*key, part)] = length or 0
                    row[f"{part}_id"], row[f"{part}_on"], row[f"{part}_minutes"] = meeting_id, day, length
                    if part == "regular":
                        plan_day = _as_date(planned)
                        row["regular_planned_on"], row["regular_combined"] = plan_day, bool(combined)
                        row["regular_late_days"] = None if plan_day is None else (day - plan_day).days
                continue
            if row[f"{part}_pending_id"] is None:
                row[f"{part}_pending_id"], row[f"{part}_pending_on"] = meeting_id, day
            row[f"{part}_last_id"], row[f"{part}_last_on"] = meeting_id, day
            row[f"{part}_last_at"] = _as_utc(starts_at)
            row[f"{part}_open"] = row[f"{part}_open"] or status == opened
    return rows


def _month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    nxt = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (dt.datetime.combine(month, dt.time(), tzinfo=LOCAL_TZ),
            dt.datetime.combine(nxt, dt.time(), tzinfo=LOCAL_TZ))


def _compute(conn: Connection, where: Any) -> dict[tuple[int, dt.date], dict[str, Any]]:
    meetings = conn.execute(_meetings_statement(where)).all()
    if not meetings:
        return {}
    ids = select(Meeting.id).where(Meeting.kind.in_(_KINDS), where).scalar_subquery() if len(meetings) > 500 \
        else [m[0] for m in meetings]
    rosters: dict[int, Sequence[int]] = {row[0]: tuple(row[1:]) for row in conn.execute(_roster_statement(ids))}
    return _fold(meetings, rosters)


def recompute(conn: Connection, cell_ids: Sequence[int] | None = None) -> dict[tuple[int, dt.date], dict[str, Any]]:
    """Every row, computed afresh from the meetings, rosters and minutes (of ``cell_ids`` only,
    when given)."""
    where = Meeting.cell_id.in_(list(cell_ids)) if cell_ids is not None else Meeting.id.is_not(None)
    return _compute(conn, where)


def stored(conn: Connection) -> dict[tuple[int, dt.date], dict[str, Any]]:
    """Every row as kept in the table (for the test that compares it with :func:`recompute`)."""
    table = CellMonth.__table__
    out = {}
    for row in conn.execute(select(table)).mappings():
        values = {name: row[name] for name in FIELDS}
        for name in ("regular_last_at", "thematic_last_at"):
            if values[name] is not None:
                values[name] = _as_utc(values[name])
        month = _as_date(row["month"])
        assert month is not None
        out[(row["cell_id"], month)] = values
    return out


def _write(conn: Connection, rows: dict[tuple[int, dt.date], dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(CellMonth),
                     [{"cell_id": cell_id, "month": month, **values} for (cell_id, month), values in rows.items()])


def _refresh(conn: Connection, cell_id: int, months: Iterable[dt.date]) -> None:
    """Recompute the cell's rows of ``months`` (first days) from its meetings."""
    for month in set(months):
        lo, hi = _month_bounds(month)
        rows = _compute(conn, and_(Meeting.cell_id == cell_id, Meeting.starts_at >= lo, Meeting.starts_at < hi))
        conn.execute(delete(CellMonth).where(CellMonth.cell_id == cell_id, CellMonth.month == month))
        _write(conn, rows)


# The rows a transaction has made stale, recomputed once when it commits (or when a reader in the
# same transaction asks, :func:`settle`): a demo load or an import marks hundreds of roster lines
# of the same few months, and recomputing a month per mark cost seconds.
_STALE_MONTHS = "cell_months.stale"
_STALE_MEETINGS = "cell_months.stale_meetings"


def _stale_months(session: Session) -> set[tuple[int, dt.date]]:
    found: set[tuple[int, dt.date]] = session.info.setdefault(_STALE_MONTHS, set())
    return found


def _stale_meetings(session: Session) -> set[int]:
    found: set[int] = session.info.setdefault(_STALE_MEETINGS, set())
    return found


def settle(session: Session) -> None:
    """Bring the rows this transaction made stale up to date (before anything reads them)."""
    meeting_ids = session.info.pop(_STALE_MEETINGS, None)
    keys = session.info.pop(_STALE_MONTHS, None) or set()
    if not meeting_ids and not keys:
        return
    session.flush()
    if meeting_ids:
        for cell_id, starts_at in session.execute(
                select(Meeting.cell_id, Meeting.starts_at).where(among(Meeting.id, sorted(meeting_ids)))):
            keys.add((cell_id, _as_utc(starts_at).astimezone(LOCAL_TZ).date().replace(day=1)))
    by_cell: dict[int, set[dt.date]] = {}
    for cell_id, month in keys:
        by_cell.setdefault(cell_id, set()).add(month)
    conn = session.connection()
    for cell_id, months in sorted(by_cell.items()):
        _refresh(conn, cell_id, sorted(months))


@sa_event.listens_for(Session, "before_commit")
def _settle_before_commit(session: Session) -> None:
    settle(session)


@sa_event.listens_for(Session, "do_orm_execute")
def _settle_before_reading(state: ORMExecuteState) -> None:
    """A read of the rows in the transaction that made them stale sees them brought up to date."""
    info = state.session.info
    statement = state.statement
    if state.is_select and (info.get(_STALE_MONTHS) or info.get(_STALE_MEETINGS)) \
            and isinstance(statement, ClauseElement) \
            and any(getattr(t, "name", None) == CellMonth.__tablename__ for t in find_tables(statement, include_joins=True)):
        settle(state.session)


@sa_event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_STALE_MONTHS, None)
    session.info.pop(_STALE_MEETINGS, None)


def rebuild(conn: Connection, cell_ids: Sequence[int] | None = None) -> int:
    """Replace every row (of ``cell_ids`` only, when given) by a recomputation; returns how
    many rows there are now. For data written around the domain, and the migration."""
    rows = recompute(conn, cell_ids)
    stmt = delete(CellMonth)
    if cell_ids is not None:
        stmt = stmt.where(CellMonth.cell_id.in_(list(cell_ids)))
    conn.execute(stmt)
    _write(conn, rows)
    return len(rows)


def by_meeting(conn: Connection, cell_id: int, month: dt.date) -> list[tuple[dt.date, dict[str, Any]]]:
    """The month's figures meeting by meeting (each meeting's day and what it adds to the
    row): for an audit whose committee took the cell over within that month."""
    lo, hi = _month_bounds(month)
    meetings = conn.execute(_meetings_statement(and_(Meeting.cell_id == cell_id, Meeting.starts_at >= lo,
                                                     Meeting.starts_at < hi))).all()
    if not meetings:
        return []
    rosters: dict[int, Sequence[int]] = {
        row[0]: tuple(row[1:]) for row in conn.execute(_roster_statement([m[0] for m in meetings]))}
    out = []
    for m in meetings:
        day = _as_date(m[2])
        assert day is not None
        out.append((day, next(iter(_fold([m], rosters).values()))))
    return out


def read_statement(cell_ids: Sequence[int], first: dt.date, last: dt.date) -> AnySelect:
    """The rows of the cells for the months ``first``–``last`` (the audit's one read of them)."""
    return (select(CellMonth.__table__).where(among(CellMonth.cell_id, cell_ids),
                                             CellMonth.month >= first, CellMonth.month <= last))


@events.subscribe(MeetingChanged)
def _meeting_changed(session: Session, event: MeetingChanged) -> None:
    if event.kind in _KINDS:  # chi ủy and extraordinary meetings are in no row
        _stale_months(session).update((event.cell_id, month) for month in event.months)


@events.subscribe(RosterChanged)
def _roster_changed(session: Session, event: RosterChanged) -> None:
    _stale_meetings(session).add(event.meeting_id)


@events.subscribe(MinutesAdopted)
def _minutes_adopted(session: Session, event: MinutesAdopted) -> None:
    _stale_meetings(session).add(event.meeting_id)
