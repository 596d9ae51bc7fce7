"""The cell-month figures the audit reads (issue 18) stay equal to a full recomputation from
the meetings, rosters and minutes, whatever happens in between: meetings held, scheduled,
moved, cancelled, opened and recorded afterwards; marks, amendments and late absence
decisions; minutes adopted; periods added; cells moved between communes (also within a month).
And the audit the province sees from the database's sums equals the month-by-month audit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from dataclasses import astuple

import pytest
from sqlalchemy import select, text

from meetings.evaluation import monthly, regularity
from meetings.evaluation.regularity import Tally
from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import ValidationError
from meetings.organisation import members, organisations
from meetings.organisation.members import PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation
from meetings.planning import absences, compliance, dates, schedules
from meetings.planning.meetings import (
    Meeting,
    MeetingKind,
    MeetingStatus,
    change_status,
    create_meeting,
)
from meetings.proceedings import attendance
from meetings.proceedings.attendance import Mark
from tests.support.world import adopt_minutes
from tests.support.year import MARKS, at, hold

ACTOR = Actor.system("test")
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=LOCAL_TZ)
CELLS, COMMUNES = ("A", "B", "C"), ("X", "Y")


def _day(rng: random.Random, first: dt.date = dt.date(2026, 1, 1), last: dt.date = dt.date(2026, 11, 25)) -> dt.date:
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


class Story:
    """Random facts written through the domain operations, as the pages write them."""

    def __init__(self, session, world, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
        self.s, self.w, self.rng = session, world, rng
        self.moves: dict[str, dt.date] = {}
        self.periods: set[tuple[int, PeriodKind]] = set()

    def cell(self) -> Organisation:
        return self.s.get(Organisation, self.w.id(self.rng.choice(CELLS)))

    def meetings(self, *statuses: MeetingStatus) -> list[Meeting]:
        return list(self.s.scalars(select(Meeting).where(Meeting.status.in_(statuses)).order_by(Meeting.id)))

    def hold(self) -> None:
        rng = self.rng
        day = _day(rng)
        kind = rng.choice([MeetingKind.REGULAR] * 3 + [MeetingKind.THEMATIC])
        combined = kind == MeetingKind.REGULAR and rng.random() < 0.3
        exempt = {member_id for member_id, kind in self.periods if kind == PeriodKind.EXEMPT}
        marks = {m.id: rng.choice([*MARKS, None]) for m in self.w.members.values() if m.id not in exempt}
        meeting = hold(self.s, self.cell(), day, {k: v for k, v in marks.items() if v}, kind=kind,
                       combined=combined, minutes_long=rng.choice([60, 85, 95, 125, 150]),
                       everyone=rng.choice([None, "in_person"]),
                       planned=rng.choice([None, day, day - dt.timedelta(days=rng.randrange(1, 20))]),
                       actual_times=rng.random() < 0.3)
        if rng.random() < 0.5:
            self._adopt(meeting, rng.choice([dt.timedelta(hours=1), dt.timedelta(days=12)]))

    def _adopt(self, meeting: Meeting, after: dt.timedelta) -> None:
        signers = [r for r in attendance.roster(self.s, meeting) if r.expected and r.in_roll]
        if len(signers) >= 2:  # a chair and a minute-taker
            adopt_minutes(self.s, meeting, (meeting.closed_at or meeting.starts_at) + after)

    def schedule(self) -> None:
        """A meeting ahead, sometimes moved or cancelled."""
        day = _day(self.rng, dt.date(2026, 11, 28), dt.date(2027, 1, 20))
        meeting = create_meeting(self.s, ACTOR, self.cell(), kind=self.rng.choice([MeetingKind.REGULAR,
                                                                                    MeetingKind.THEMATIC]),
                                 starts_at=at(day), topic="Chuyên đề")
        roll = self.rng.random()
        if roll < 0.3:
            # Refused, before anything changes, when the new month has such a meeting already.
            with contextlib.suppress(ValidationError):
                dates.move_meeting(self.s, ACTOR, meeting, at(day + dt.timedelta(days=self.rng.randrange(1, 40))),
                                   "Trùng lịch công tác", now=NOW)
        elif roll < 0.5:
            schedules.cancel_meeting(self.s, ACTOR, meeting, "Bão lũ", now=NOW)

    def unrecorded(self) -> None:
        """A meeting whose time passed with nothing recorded, or one left open."""
        day = _day(self.rng)
        meeting = create_meeting(self.s, ACTOR, self.cell(), kind=MeetingKind.REGULAR, starts_at=at(day))
        if self.rng.random() < 0.4:
            change_status(self.s, ACTOR, meeting, MeetingStatus.OPEN, now=at(day))
            attendance.roster(self.s, meeting)

    def record_times(self) -> None:
        """The secretary records afterwards when a past meeting was held (which closes it)."""
        waiting = [m for m in self.meetings(MeetingStatus.SCHEDULED, MeetingStatus.OPEN) if m.starts_at < NOW]
        if waiting:
            meeting = self.rng.choice(waiting)
            start = meeting.opened_at or meeting.starts_at
            dates.record_actual_times(self.s, ACTOR, meeting, start, start + dt.timedelta(minutes=100), now=NOW)

    def absence(self) -> None:
        """An absence request approved while the meeting runs: the roster takes it in."""
        for meeting in self.meetings(MeetingStatus.OPEN):
            line = next((r for r in attendance.roster(self.s, meeting) if r.expected), None)
            if line is None or absences.request_of(self.s, meeting.id, line.member_id) is not None:
                continue
            request = absences.file_request(self.s, ACTOR, meeting, line.member_id, "Ốm đột xuất",
                                            now=meeting.starts_at)
            absences.decide(self.s, ACTOR, request, meeting, approve=True, note=None, now=meeting.starts_at)
            return

    def amend(self) -> None:
        closed = self.meetings(MeetingStatus.CLOSED)
        if not closed:
            return
        meeting = self.rng.choice(closed)
        lines = [r for r in attendance.roster(self.s, meeting) if r.expected]
        if lines:
            line = self.rng.choice(lines)
            choice = self.rng.choice(list(MARKS))
            attendance.mark(self.s, ACTOR, meeting, line.member_id, MARKS[choice],
                            now=meeting.starts_at + dt.timedelta(days=2), amendment_reason="Chi ủy xác minh lại")

    def adopt(self) -> None:
        closed = [m for m in self.meetings(MeetingStatus.CLOSED)
                  if not self.s.scalar(text(f"SELECT COUNT(*) FROM minutes_versions WHERE meeting_id = {m.id}"))]
        if closed:
            self._adopt(self.rng.choice(closed), dt.timedelta(days=self.rng.choice([0, 3, 20])))

    def period(self) -> None:
        member = self.rng.choice(list(self.w.members.values()))
        kind = self.rng.choice([PeriodKind.AWAY, PeriodKind.EXEMPT])
        if (member.id, kind) in self.periods or (member.id, PeriodKind.AWAY) == (self.w.members["a4"].id, kind):
            return
        self.periods.add((member.id, kind))
        start = _day(self.rng)
        data = PeriodInput(kind=kind, start_on=start, place="Bình Dương", host_org_name="Công ty May") \
            if kind == PeriodKind.AWAY else \
            PeriodInput(kind=kind, start_on=start, decision_number="12-QĐ/CB", exempt_kind="full", reason="Ốm dài ngày")
        members.add_period(self.s, ACTOR, member, data)

    def restructure(self) -> None:
        """A cell moves to the other commune, on the 1st of a month or in the middle of one."""
        key = self.rng.choice(CELLS)
        after = self.moves.get(key, dt.date(2026, 1, 1))
        if after >= dt.date(2026, 11, 1):
            return
        on = _day(self.rng, after + dt.timedelta(days=1), dt.date(2026, 11, 20))
        on = on.replace(day=1) if self.rng.random() < 0.5 else on
        if on <= after:
            return
        cell = self.s.get(Organisation, self.w.id(key))
        target = next(c for c in COMMUNES if self.w.id(c) != cell.parent_id)
        organisations.move_organisation(self.s, ACTOR, cell, self.s.get(Organisation, self.w.id(target)), on)
        self.moves[key] = on

    def step(self) -> None:
        getattr(self, self.rng.choice(["hold"] * 4 + ["schedule", "unrecorded", "record_times", "absence", "amend",
                                                      "amend", "adopt", "period", "restructure"]))()
        self.s.flush()


def _figures(audit: regularity.Audit):  # type: ignore[no-untyped-def]
    """What an audit page and its exports show: per cell, per child, the total, the trend and
    the grid of the committee's children."""
    return ({c.id: (astuple(c.tally), {k: astuple(t) for k, t in c.by_child.items()}) for c in audit.cells},
            [(c.id, astuple(t)) for c, t in audit.children], astuple(audit.total),
            [astuple(p) for p in audit.trend],
            {k: v for k, v in audit.due.items() if any(v)}, {k: v for k, v in audit.held.items() if any(v)})


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kept_figures_equal_a_recomputation_after_random_facts(database, world, seed):
    story = None
    with database.session() as s:
        story = Story(s, world, random.Random(seed))
        for _ in range(45):
            story.step()
    with database.engine.connect() as conn:
        kept, fresh = monthly.stored(conn), monthly.recompute(conn)
    assert kept == fresh
    assert sum(row["held"] for row in kept.values()) >= 10 and any(row["expected"] for row in kept.values())
    with database.session() as s:
        for key in ("P", "X", "Y"):
            org = s.get(Organisation, world.id(key))
            for quarter in (None, 2, 4):
                summed = regularity.audit(s, org, 2026, quarter, NOW)
                by_month = regularity.audit(s, org, 2026, quarter, NOW, detail_all=True)
                assert _figures(summed) == _figures(by_month), (key, quarter)
        # The months and quarters are judged as schedule compliance judges them from the meetings.
        cells = [s.get(Organisation, world.id(k)) for k in CELLS]
        reports = compliance.for_cells(s, cells, 2026, NOW)
        for cell in cells:
            audit = regularity.audit(s, cell, 2026, None, NOW).cells[0]
            report = reports[cell.id]
            for mark, month in zip(audit.months, report.months, strict=True):
                assert (mark.cell.mark, mark.cell.minutes) == (month.regular.mark, month.regular.minutes), mark
            assert [m for _, m, _ in audit.quarters] == [q.thematic.mark for q in report.quarters]


def test_a_cell_moved_mid_month_splits_that_month_between_its_communes(database, world):
    """The month of the move counts each meeting for the commune of its own day (history as of
    its time), from the same figures."""
    with database.session() as s:
        a = s.get(Organisation, world.id("A"))
        hold(s, a, dt.date(2026, 7, 3), {}, planned=dt.date(2026, 7, 3))
        organisations.move_organisation(s, ACTOR, a, s.get(Organisation, world.id("Y")), dt.date(2026, 7, 15))
        hold(s, a, dt.date(2026, 7, 20), {}, kind=MeetingKind.THEMATIC)
    with database.session() as s:
        p = regularity.audit(s, s.get(Organisation, world.id("P")), 2026, 3, NOW)
        children = {c.id: t for c, t in p.children}
        assert (children[world.id("X")].held, children[world.id("Y")].held) == (1, 1)
        assert children[world.id("X")].expected == 4 and children[world.id("Y")].expected == 4
        assert sum(point.expected for point in p.trend) == 8


def test_tally_add_covers_every_field():
    one = Tally(*range(1, len(astuple(Tally())) + 1))
    total = Tally()
    total.add(one)
    assert astuple(total) == astuple(one)


def test_marks_the_secretary_changes_reach_the_figures_at_once(database, world):
    """One mark, one amendment: the month's row follows in the same transaction."""
    with database.session() as s:
        meeting = hold(s, s.get(Organisation, world.id("B")), dt.date(2026, 4, 9), {}, planned=dt.date(2026, 4, 9))
        b1 = world.members["b1"].id
        attendance.mark(s, ACTOR, meeting, b1, Mark(status="absent", excused=False), now=NOW,
                        amendment_reason="Đồng chí vắng nhưng bị ghi nhầm là có mặt")
        row = s.get(monthly.CellMonth, (world.id("B"), dt.date(2026, 4, 1)))
        assert (row.expected, row.present, row.unexcused) == (3, 2, 1)
