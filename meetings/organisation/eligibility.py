"""Who is expected at a cell's meeting on day D, and who may vote there.

This is the one place the rules are applied; attendance, votes, notices and the yearly
records all call :func:`electorate`. Rules (shared/domain/cases.md, decisions 7–9):

* A home member who is **suspended** (đình chỉ sinh hoạt) is neither expected nor a voter.
* A home member on **temporary transfer out** (giới thiệu sinh hoạt tạm thời đi nơi khác) is
  not expected, not counted absent and not a voter here (Quy định 232-QĐ/TW §6.3.2).
* An **exempt** member (miễn / tạm miễn sinh hoạt) is not expected and never counted absent;
  an exempt *official* member who does attend may vote (Quy định 232 §9.3.2).
* Everyone else in the home cell is expected; official members vote, probationary members
  do not (Điều lệ Đảng, Điều 3).
* A member **attached** to the cell (sinh hoạt tạm thời, SHT: the host side of a temporary
  transfer) is expected and may speak, but does not vote and is not in the cell's roll.

Away (đi làm ăn xa) does not change any of this: an away member is expected and may join
online where the cell is approved for the pilot.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..foundation.text import name_sort_key
from .members import Member, MemberPeriod, Membership, MemberStatus, PeriodKind
from .organisations import Organisation


class Standing(enum.StrEnum):
    OFFICIAL = "official"
    PROBATIONARY = "probationary"
    ATTACHED = "attached"
    EXEMPT = "exempt"
    TRANSFERRED_OUT = "transferred_out"
    SUSPENDED = "suspended"

    @property
    def label(self) -> str:
        return STANDING_LABELS[self]


STANDING_LABELS = {
    Standing.OFFICIAL: "Chính thức",
    Standing.PROBATIONARY: "Dự bị",
    Standing.ATTACHED: "Sinh hoạt tạm thời (SHT)",
    Standing.EXEMPT: "Miễn sinh hoạt",
    Standing.TRANSFERRED_OUT: "Giới thiệu SHT đi nơi khác",
    Standing.SUSPENDED: "Đình chỉ sinh hoạt",
}


@dataclass(frozen=True)
class Eligibility:
    member_id: int
    full_name: str
    standing: Standing
    #: Official or probationary on the day, whatever the standing.
    status: MemberStatus
    #: Expected at the meeting: absence is then recorded (with or without reason).
    expected: bool
    #: May vote if present. Exempt official members may, though they are not expected.
    may_vote: bool
    #: Counted in the cell's roll (đảng số); attached members are not.
    in_roll: bool
    #: An away period (đi làm ăn xa) covers the day.
    away: bool
    #: For attached members: where they belong; for transferred ones: where they went.
    elsewhere: str | None = None


@dataclass(frozen=True)
class Electorate:
    cell_id: int
    on: dt.date
    entries: tuple[Eligibility, ...]

    def __iter__(self) -> Iterator[Eligibility]:
        return iter(self.entries)

    def get(self, member_id: int) -> Eligibility | None:
        for entry in self.entries:
            if entry.member_id == member_id:
                return entry
        return None

    @property
    def expected(self) -> list[Eligibility]:
        return [e for e in self.entries if e.expected]

    @property
    def roll(self) -> list[Eligibility]:
        return [e for e in self.entries if e.in_roll]

    def with_standing(self, *standings: Standing) -> list[Eligibility]:
        return [e for e in self.entries if e.standing in standings]

    def counts(self) -> dict[str, int]:
        """The roll as minutes state it: total split by status, then exempt and transferred."""
        roll = self.roll
        return {
            "total": len(roll) + len(self.with_standing(Standing.ATTACHED)),
            "official": sum(1 for e in roll if e.status == MemberStatus.OFFICIAL),
            "probationary": sum(1 for e in roll if e.status == MemberStatus.PROBATIONARY),
            "attached": len(self.with_standing(Standing.ATTACHED)),
            "exempt": len(self.with_standing(Standing.EXEMPT)),
            "transferred_out": len(self.with_standing(Standing.TRANSFERRED_OUT)),
            "suspended": len(self.with_standing(Standing.SUSPENDED)),
            "expected": len(self.expected),
            "away": sum(1 for e in self.entries if e.away and e.expected),
        }

    def denominator(self, present_ids: Iterable[int]) -> int:
        """D: the count a resolution's *agree* votes are measured against (decision 7).

        Official members of the cell − official members on temporary transfer out − exempt
        official members who are absent − suspended members (Quy định 232-QĐ/TW §9.3.2).
        Probationary and attached (SHT) members are not in D.
        """
        present = set(present_ids)
        total = 0
        for e in self.roll:
            if e.status != MemberStatus.OFFICIAL:
                continue
            if e.standing in (Standing.TRANSFERRED_OUT, Standing.SUSPENDED):
                continue
            if e.standing == Standing.EXEMPT and e.member_id not in present:
                continue
            total += 1
        return total

    def voters_present(self, present_ids: Iterable[int]) -> list[Eligibility]:
        present = set(present_ids)
        return [e for e in self.entries if e.may_vote and e.member_id in present]


def agree_votes_needed(denominator: int) -> int:
    """A resolution passes when agree votes > D / 2 (Điều lệ Đảng, Điều 10; decision 7)."""
    return denominator // 2 + 1


def passes(agree: int, denominator: int) -> bool:
    return denominator > 0 and agree * 2 > denominator


def _standing_of(member: Member, periods: list[MemberPeriod], on: dt.date) -> tuple[Standing, str | None]:
    kinds = {p.kind: p for p in periods}
    if PeriodKind.SUSPENDED in kinds:
        return Standing.SUSPENDED, None
    if PeriodKind.TRANSFER_OUT in kinds:
        period = kinds[PeriodKind.TRANSFER_OUT]
        return Standing.TRANSFERRED_OUT, period.host_org_name
    if PeriodKind.EXEMPT in kinds:
        return Standing.EXEMPT, None
    if member.status_on(on) == MemberStatus.OFFICIAL:
        return Standing.OFFICIAL, None
    return Standing.PROBATIONARY, None


def electorate(session: Session, cell_id: int, on: dt.date) -> Electorate:
    """Everyone with a standing in cell ``cell_id`` on day ``on``: home members and attached ones."""
    home_ids = list(
        session.scalars(
            select(Membership.member_id).where(
                Membership.cell_id == cell_id,
                Membership.start_on <= on,
                or_(Membership.end_on.is_(None), Membership.end_on >= on),
            )
        )
    )
    attached_periods = list(
        session.scalars(
            select(MemberPeriod).where(
                MemberPeriod.kind == PeriodKind.TRANSFER_OUT,
                MemberPeriod.host_cell_id == cell_id,
                MemberPeriod.start_on <= on,
                or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= on),
            )
        )
    )
    attached_ids = [p.member_id for p in attached_periods if p.member_id not in home_ids]
    ids = home_ids + attached_ids
    if not ids:
        return Electorate(cell_id, on, ())
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids)))}
    periods: dict[int, list[MemberPeriod]] = {mid: [] for mid in ids}
    for period in session.scalars(
        select(MemberPeriod).where(
            MemberPeriod.member_id.in_(ids),
            MemberPeriod.start_on <= on,
            or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= on),
        )
    ):
        periods[period.member_id].append(period)

    entries: list[Eligibility] = []
    for mid in home_ids:
        member = members[mid]
        if member.admitted_on > on:
            continue
        standing, elsewhere = _standing_of(member, periods[mid], on)
        status = member.status_on(on)
        entries.append(
            Eligibility(
                member_id=mid,
                full_name=member.full_name,
                standing=standing,
                status=status,
                expected=standing in (Standing.OFFICIAL, Standing.PROBATIONARY),
                may_vote=status == MemberStatus.OFFICIAL
                and standing in (Standing.OFFICIAL, Standing.EXEMPT),
                in_roll=True,
                away=any(p.kind == PeriodKind.AWAY for p in periods[mid]),
                elsewhere=elsewhere,
            )
        )
    for mid in attached_ids:
        member = members[mid]
        suspended = any(p.kind == PeriodKind.SUSPENDED for p in periods[mid])
        if suspended:
            continue
        host = member.home_org_name
        if host is None and member.home_cell_id is not None:
            home = session.get(Organisation, member.home_cell_id)
            host = home.name if home else None
        entries.append(
            Eligibility(
                member_id=mid,
                full_name=member.full_name,
                standing=Standing.ATTACHED,
                status=member.status_on(on),
                expected=True,
                may_vote=False,
                in_roll=False,
                away=False,
                elsewhere=host,
            )
        )
    entries.sort(key=lambda e: (name_sort_key(e.full_name), e.member_id))
    return Electorate(cell_id, on, tuple(entries))

