"""A member's yearly record: derived from the rosters and the member's periods, never typed in.

For every meeting of the year that has taken place (open or closed; committee meetings
aside) and has the member on its roster, the record shows what the roster says, with two
corrections from the member's periods as they are known *now*:

* a meeting on a day under exemption, suspension or — in the home cell — temporary transfer
  out is *not expected*, even when the roster was drawn up before the period was recorded
  (decision 9: such months are not counted; case C4: a transferred member's home meetings
  show "transferred", not absent);
* meetings of a cell the member was attached to (sinh hoạt tạm thời) count like home ones:
  the record takes those months from the host cell's rosters (regulations.md E4).

A held meeting of the member's home cell with no roster line for the member is listed as
*not recorded* (chưa điểm danh): expected, but neither present nor absent.

The record also applies the three-month rule's counting (decision 9; Quy định 232-QĐ/TW,
Điều lệ Đảng Điều 8): the months with an unexcused absence from a counted meeting (regular;
thematic when the policy says so — ``meetings.policies``), and, separately, the months with
unpaid dues outside exempt, transferred and suspended months. :mod:`meetings.three_month`
raises the flags from these.

:func:`records_for` builds many records with a fixed number of queries (a whole commune's
year-end list, a province's flag recheck); :func:`record_of` is the same for one member, so
the two can never disagree.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, union_all
from sqlalchemy.orm import Session

from ..foundation.base import LOCAL_TZ
from ..foundation.sqltime import local_date, unindexed
from ..organisation.eligibility import STANDING_LABELS, Standing
from ..organisation.members import Member, MemberPeriod, Membership, PeriodKind
from ..organisation.organisations import Organisation
from ..planning.meetings import Meeting, MeetingKind, MeetingStatus
from ..proceedings.attendance import (
    AttendanceMode,
    AttendanceRecord,
    AttendanceStatus,
    DuesRecord,
    DuesStatus,
)
from ..proceedings.votes import BallotCast, Motion, OpenVote
from .policies import Policy, policies_for

#: Period kinds that take a member out of a cell's meetings (decision 9).
EXCLUDING = (PeriodKind.SUSPENDED, PeriodKind.TRANSFER_OUT, PeriodKind.EXEMPT)
EXCLUDING_LABELS = {
    PeriodKind.SUSPENDED: STANDING_LABELS[Standing.SUSPENDED],
    PeriodKind.TRANSFER_OUT: STANDING_LABELS[Standing.TRANSFERRED_OUT],
    PeriodKind.EXEMPT: STANDING_LABELS[Standing.EXEMPT],
}
#: Meetings that appear in a member's record (chi ủy meetings concern the chi ủy only).
RECORD_KINDS = (MeetingKind.REGULAR, MeetingKind.THEMATIC, MeetingKind.EXTRAORDINARY)


class Outcome(enum.StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"
    EXCUSED = "excused"
    UNEXCUSED = "unexcused"
    UNMARKED = "unmarked"
    NOT_EXPECTED = "not_expected"

    @property
    def label(self) -> str:
        return {"in_person": "Có mặt trực tiếp", "online": "Có mặt trực tuyến", "excused": "Vắng có lý do",
                "unexcused": "Vắng không có lý do", "unmarked": "Chưa điểm danh",
                "not_expected": "Không phải dự"}[self.value]


class Line(NamedTuple):
    """One meeting in the member's year (a named tuple: a commune's list builds thousands)."""

    meeting_id: int
    cell_id: int
    day: dt.date
    kind: MeetingKind
    combined: bool
    title: str
    #: In a cell the member was attached to (SHT), not the home cell.
    attached: bool
    expected: bool
    outcome: Outcome
    #: Why the member was not expected, or the reason of an excused absence.
    note: str | None
    online_minutes: int | None
    votes: int
    #: False: the meeting was held but no attendance was recorded for the member.
    recorded: bool = True


@dataclass
class Month:
    month: int
    lines: list[Line] = field(default_factory=list)
    #: Exempt / transferred / suspended on some day of the month (label), else None.
    excluded: str | None = None
    dues: DuesStatus | None = None
    absence_counted: bool = False
    dues_counted: bool = False


@dataclass
class YearRecord:
    member_id: int
    year: int
    policy: Policy
    lines: list[Line] = field(default_factory=list)
    months: list[Month] = field(default_factory=list)
    expected: int = 0
    in_person: int = 0
    online: int = 0
    excused: int = 0
    unexcused: int = 0
    unmarked: int = 0
    votes: int = 0
    #: Months with an unexcused absence from a counted meeting (three-month rule).
    absence_months: list[int] = field(default_factory=list)
    #: Months with unpaid dues, outside excluded months (counted separately).
    dues_months: list[int] = field(default_factory=list)

    @property
    def present(self) -> int:
        return self.in_person + self.online

    @property
    def attendance_rate(self) -> float | None:
        return None if self.expected == 0 else self.present / self.expected

    @property
    def unexcused_months(self) -> int:
        return len(self.absence_months)

    def counted_lines(self, month: int) -> list[Line]:
        """The meetings that make ``month`` count toward the three-month rule."""
        return [line for line in self.months[month - 1].lines if self.counts(line)]

    def counts(self, line: Line) -> bool:
        counted_kind = line.kind == MeetingKind.REGULAR or (line.kind == MeetingKind.THEMATIC
                                                            and self.policy.count_thematic)
        return line.expected and line.outcome == Outcome.UNEXCUSED and counted_kind

    def figures(self) -> dict[str, object]:
        """The figures that sit beside a classification (and are kept with it)."""
        return {
            "year": self.year, "expected": self.expected, "in_person": self.in_person, "online": self.online,
            "excused": self.excused, "unexcused": self.unexcused, "unmarked": self.unmarked, "votes": self.votes,
            "absence_months": list(self.absence_months), "dues_months": list(self.dues_months),
            "attendance_rate": None if self.attendance_rate is None else round(self.attendance_rate, 4),
        }


def year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime(year, 1, 1, tzinfo=LOCAL_TZ), dt.datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ)


def _month_span(year: int, month: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, month, 1)
    end = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
    return start, end


def held_condition() -> ColumnElement[bool]:
    """A meeting that has taken place (or is taking place): it belongs in the records."""
    return or_(Meeting.status.in_([MeetingStatus.OPEN, MeetingStatus.CLOSED]), Meeting.actual_end_at.is_not(None))


def _excluded_by(periods: Sequence[MemberPeriod], day: dt.date, attached: bool) -> str | None:
    """The label of the period that takes the member out of a meeting on ``day``, if any."""
    for kind in EXCLUDING:
        if attached and kind == PeriodKind.TRANSFER_OUT:
            continue  # the transfer is what brings the member to the host cell
        for period in periods:
            if period.kind == kind and period.covers(day):
                return EXCLUDING_LABELS[kind]
    return None


def _month_excluded(periods: Sequence[MemberPeriod], year: int, month: int) -> str | None:
    start, end = _month_span(year, month)
    for kind in EXCLUDING:
        for period in periods:
            if period.kind == kind and period.start_on <= end and (period.end_on is None or period.end_on >= start):
                return EXCLUDING_LABELS[kind]
    return None


def _outcome(status: AttendanceStatus, mode: AttendanceMode | None, excused: bool | None) -> Outcome:
    if status == AttendanceStatus.PRESENT:
        return Outcome.ONLINE if mode == AttendanceMode.ONLINE else Outcome.IN_PERSON
    if status == AttendanceStatus.ABSENT:
        return Outcome.EXCUSED if excused else Outcome.UNEXCUSED
    if status == AttendanceStatus.NOT_EXPECTED:
        return Outcome.NOT_EXPECTED
    return Outcome.UNMARKED


def records_for(session: Session, member_ids: Sequence[int], year: int) -> dict[int, YearRecord]:
    """The yearly records of many members: seven queries whatever their number."""
    ids = list(dict.fromkeys(member_ids))
    if not ids:
        return {}
    lo, hi = year_bounds(year)
    in_year = and_(Meeting.starts_at >= lo, Meeting.starts_at < hi, Meeting.kind.in_(RECORD_KINDS), held_condition())
    conn = session.connection()

    # The members' own roster lines are few and a year of meetings many: the database should
    # start from the members, not walk the year's meetings by date (meetings.sqltime.unindexed).
    starts = unindexed(Meeting.starts_at)
    roster_rows = conn.execute(
        select(AttendanceRecord.member_id, Meeting.id, Meeting.cell_id, local_date(Meeting.starts_at), Meeting.kind,
               Meeting.combined_thematic, Meeting.title, AttendanceRecord.in_roll, AttendanceRecord.expected,
               AttendanceRecord.standing, AttendanceRecord.status, AttendanceRecord.mode, AttendanceRecord.excused,
               AttendanceRecord.reason_text, AttendanceRecord.online_minutes)
        .join(Meeting, Meeting.id == AttendanceRecord.meeting_id)
        .where(AttendanceRecord.member_id.in_(ids), starts >= lo, starts < hi, Meeting.kind.in_(RECORD_KINDS),
               held_condition())
    ).all()
    unrecorded_rows = conn.execute(
        select(Membership.member_id, Membership.start_on, Membership.end_on, Meeting.id, Meeting.cell_id,
               local_date(Meeting.starts_at), Meeting.kind, Meeting.combined_thematic, Meeting.title)
        .join(Meeting, Meeting.cell_id == Membership.cell_id)
        .where(Membership.member_id.in_(ids), in_year,
               ~exists().where(AttendanceRecord.meeting_id == Meeting.id,
                               AttendanceRecord.member_id == Membership.member_id))
    ).all()
    votes_query = union_all(
        select(OpenVote.member_id.label("member_id"), Motion.meeting_id.label("meeting_id"))
        .join(Motion, Motion.id == OpenVote.motion_id).join(Meeting, Meeting.id == Motion.meeting_id)
        .where(OpenVote.member_id.in_(ids), Meeting.starts_at >= lo, Meeting.starts_at < hi),
        select(BallotCast.member_id.label("member_id"), Motion.meeting_id.label("meeting_id"))
        .join(Motion, Motion.id == BallotCast.motion_id).join(Meeting, Meeting.id == Motion.meeting_id)
        .where(BallotCast.member_id.in_(ids), Meeting.starts_at >= lo, Meeting.starts_at < hi),
    ).subquery()
    votes: dict[tuple[int, int], int] = {
        (m, g): n for m, g, n in conn.execute(
            select(votes_query.c.member_id, votes_query.c.meeting_id, func.count())
            .group_by(votes_query.c.member_id, votes_query.c.meeting_id))
    }
    periods: dict[int, list[MemberPeriod]] = {i: [] for i in ids}
    for period in session.scalars(select(MemberPeriod).where(
            MemberPeriod.member_id.in_(ids), MemberPeriod.kind.in_(EXCLUDING),
            MemberPeriod.start_on <= dt.date(year, 12, 31),
            or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= dt.date(year, 1, 1)))):
        periods[period.member_id].append(period)
    dues: dict[int, dict[int, DuesStatus]] = {i: {} for i in ids}
    for member_id, month, status in conn.execute(
            select(DuesRecord.member_id, DuesRecord.month, DuesRecord.status).where(
                DuesRecord.member_id.in_(ids), DuesRecord.month >= dt.date(year, 1, 1),
                DuesRecord.month <= dt.date(year, 12, 1))):
        dues[member_id][month.month] = status
    people = dict(conn.execute(select(Member.id, Member.home_cell_id).where(Member.id.in_(ids))).all())
    admitted = dict(conn.execute(select(Member.id, Member.admitted_on).where(Member.id.in_(ids))).all())
    home_cells = [c for c in set(people.values()) if c is not None]
    policies = policies_for(session, home_cells)

    lines: dict[int, list[Line]] = {i: [] for i in ids}
    for (member_id, meeting_id, cell_id, day, kind, combined, title, in_roll, expected, standing, status, mode,
         excused, reason, minutes) in roster_rows:
        attached = not in_roll
        outcome = _outcome(status, mode, excused)
        note = reason if outcome == Outcome.EXCUSED else None
        if not expected:
            note = standing.label
        else:
            excluded = _excluded_by(periods[member_id], day, attached)
            if excluded is not None:
                expected, note = False, excluded
                if outcome not in (Outcome.IN_PERSON, Outcome.ONLINE):
                    outcome = Outcome.NOT_EXPECTED
        lines[member_id].append(Line(meeting_id, cell_id, day, kind, combined, title, attached, expected, outcome,
                                     note, minutes, votes.get((member_id, meeting_id), 0)))
    for (member_id, start_on, end_on, meeting_id, cell_id, day, kind, combined, title) in unrecorded_rows:
        if day < start_on or (end_on is not None and day > end_on) or day < admitted[member_id]:
            continue
        excluded = _excluded_by(periods[member_id], day, False)
        lines[member_id].append(Line(
            meeting_id, cell_id, day, kind, combined, title, False, excluded is None,
            Outcome.UNMARKED if excluded is None else Outcome.NOT_EXPECTED, excluded, None,
            votes.get((member_id, meeting_id), 0), recorded=False))

    result: dict[int, YearRecord] = {}
    for member_id in ids:
        home = people.get(member_id)
        record = YearRecord(member_id, year, policies[home] if home is not None else Policy())
        record.lines = sorted(lines[member_id], key=lambda line: (line.day, line.meeting_id))
        record.months = [Month(m, excluded=_month_excluded(periods[member_id], year, m),
                               dues=dues[member_id].get(m)) for m in range(1, 13)]
        for line in record.lines:
            record.months[line.day.month - 1].lines.append(line)
            record.votes += line.votes
            if not line.expected:
                continue
            record.expected += 1
            if line.outcome == Outcome.IN_PERSON:
                record.in_person += 1
            elif line.outcome == Outcome.ONLINE:
                record.online += 1
            elif line.outcome == Outcome.EXCUSED:
                record.excused += 1
            elif line.outcome == Outcome.UNEXCUSED:
                record.unexcused += 1
            else:
                record.unmarked += 1
        for summary in record.months:
            summary.absence_counted = any(record.counts(line) for line in summary.lines)
            summary.dues_counted = summary.dues == DuesStatus.UNPAID and summary.excluded is None
        record.absence_months = [m.month for m in record.months if m.absence_counted]
        record.dues_months = [m.month for m in record.months if m.dues_counted]
        result[member_id] = record
    return result


def record_of(session: Session, member_id: int, year: int) -> YearRecord:
    return records_for(session, [member_id], year)[member_id]


def members_of_cells(session: Session, cell_ids: Sequence[int], year: int) -> list[tuple[int, int]]:
    """(member id, cell id) of everyone who belonged to one of the cells during the year —
    home members by their memberships, attached ones by their transfer periods."""
    if not cell_ids:
        return []
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    home = session.execute(select(Membership.member_id, Membership.cell_id).where(
        Membership.cell_id.in_(cell_ids), Membership.start_on <= last,
        or_(Membership.end_on.is_(None), Membership.end_on >= first))).all()
    attached = session.execute(select(MemberPeriod.member_id, MemberPeriod.host_cell_id).where(
        MemberPeriod.kind == PeriodKind.TRANSFER_OUT, MemberPeriod.host_cell_id.in_(cell_ids),
        MemberPeriod.start_on <= last, or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= first))).all()
    seen: dict[int, int] = {}
    for member_id, cell_id in [*home, *attached]:
        if cell_id is not None:  # always: a host cell among ``cell_ids``
            seen.setdefault(member_id, cell_id)
    return list(seen.items())


def cell_names(session: Session, cell_ids: Sequence[int]) -> dict[int, str]:
    if not cell_ids:
        return {}
    return dict(session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(cell_ids))).all())
