"""The three-month rule: warnings at two months, "xem xét xóa tên" at three — never a removal.

Điều lệ Đảng, Điều 8, as Quy định 232-QĐ/TW implements it: the cell considers and proposes
the removal (xóa tên) of a member who, without good reason, skips party activity or does not
pay dues for three months in a year. Decision 9 (shared/domain/cases.md) fixes how the
platform counts: per member and calendar year, the months with an unexcused absence from a
counted meeting, and separately the months with unpaid dues (both from
:mod:`meetings.records`); a warning at two months, the flag at three.

The state of each member's two counters lives in ``member_flags`` (one row per member, year
and rule once anything was counted). :func:`recheck` recomputes it from the records and is
called where the facts change — a secretary's attendance mark or dues record, a member's
period — in the same transaction, so the flag is raised as soon as the mark that makes the
second or third month is saved. It is idempotent: running it again changes nothing and sends
nothing; ``python -m app flags`` runs it over everyone as a repair.

When a level is reached (or lowered again, e.g. an absence later excused) the cell's
secretary and deputies and the committee the cell stands under are told through the notice
outbox (in-app and e-mail), each notice once (idempotency key per member, year, rule, level
and months). Nothing here removes anyone: the cell decides, the competent committee decides.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import events
from ..foundation.base import Base, JSONType, UTCDateTime, local_today, utcnow
from ..organisation.members import Member, PeriodChanged
from ..organisation.organisations import Organisation
from ..planning.notices import SITE, EmailStatus, Notice, cell_leader_ids
from ..proceedings.attendance import AbsenceCountChanged
from .records import YearRecord, members_of_cells, records_for

WARNING_MONTHS = 2
FLAG_MONTHS = 3


class Rule(enum.StrEnum):
    ABSENCE = "absence"
    DUES = "dues"

    @property
    def label(self) -> str:
        return {"absence": "Vắng sinh hoạt không có lý do", "dues": "Không đóng đảng phí"}[self.value]

    @property
    def short(self) -> str:
        return {"absence": "vắng sinh hoạt không có lý do", "dues": "không đóng đảng phí"}[self.value]


class Level(enum.IntEnum):
    NONE = 0
    WARNING = 1
    REMOVAL_REVIEW = 2

    @property
    def label(self) -> str:
        return {0: "Không", 1: "Cảnh báo", 2: "Xem xét xóa tên"}[int(self)]


def level_for(months: int) -> Level:
    if months >= FLAG_MONTHS:
        return Level.REMOVAL_REVIEW
    if months >= WARNING_MONTHS:
        return Level.WARNING
    return Level.NONE


class MemberFlag(Base):
    __tablename__ = "member_flags"
    __table_args__ = (
        UniqueConstraint("member_id", "year", "rule"),
        Index("ix_member_flags_cell_id_year", "cell_id", "year"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    #: The cell that considers the case: the member's home cell when last checked.
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    year: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(10))
    level: Mapped[int] = mapped_column(Integer, default=0)
    #: The months that count, e.g. [3, 6, 9].
    months: Mapped[list[int]] = mapped_column(JSONType, default=list)
    #: When the level first reached a warning or more (None while it never did).
    raised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def level_enum(self) -> Level:
        return Level(self.level)

    @property
    def rule_enum(self) -> Rule:
        return Rule(self.rule)


@dataclass(frozen=True)
class Change:
    member_id: int
    rule: Rule
    before: Level
    after: Level
    months: tuple[int, ...]


def months_of(record: YearRecord, rule: Rule) -> list[int]:
    return record.absence_months if rule == Rule.ABSENCE else record.dues_months


def recheck(session: Session, member_ids: Sequence[int], year: int, now: dt.datetime | None = None, *,
            notify: bool = True) -> list[Change]:
    """Bring the members' flags for ``year`` in line with their records; tell the cell and
    the committee about every level reached or lowered. Idempotent."""
    now = now or utcnow()
    ids = list(dict.fromkeys(member_ids))
    if not ids:
        return []
    records = records_for(session, ids, year)
    existing = {(f.member_id, f.rule): f for f in session.scalars(
        select(MemberFlag).where(MemberFlag.member_id.in_(ids), MemberFlag.year == year))}
    homes = dict(session.execute(select(Member.id, Member.home_cell_id).where(Member.id.in_(ids))).all())
    changes: list[Change] = []
    for member_id in ids:
        record = records[member_id]
        cell_id = homes.get(member_id) or _host_cell(record)
        for rule in Rule:
            months = months_of(record, rule)
            level = level_for(len(months))
            flag = existing.get((member_id, rule.value))
            if flag is None:
                if level == Level.NONE or cell_id is None:
                    continue
                flag = MemberFlag(member_id=member_id, cell_id=cell_id, year=year, rule=rule.value, level=0,
                                  months=[], changed_at=now)
                session.add(flag)
            before = Level(flag.level)
            if before == level and list(flag.months) == months:
                continue
            flag.months, flag.level, flag.changed_at = list(months), int(level), now
            if cell_id is not None:
                flag.cell_id = cell_id
            if level >= Level.WARNING and flag.raised_at is None:
                flag.raised_at = now
            if before != level:
                changes.append(Change(member_id, rule, before, level, tuple(months)))
    session.flush()
    if notify and changes:
        send_notices(session, changes, records, year, now)
    return changes


def _host_cell(record: YearRecord) -> int | None:
    """For a member attached from outside the platform: the cell they attend."""
    attached = [line.cell_id for line in record.lines if line.attached]
    return attached[-1] if attached else None


def recheck_cells(session: Session, cell_ids: Sequence[int], year: int, now: dt.datetime | None = None, *,
                  notify: bool = True, batch: int = 2000) -> list[Change]:
    """Recheck everyone who belonged to the cells during the year (a policy change, a repair)."""
    member_ids = [m for m, _ in members_of_cells(session, cell_ids, year)]
    changes: list[Change] = []
    for i in range(0, len(member_ids), batch):
        changes += recheck(session, member_ids[i:i + batch], year, now, notify=notify)
    return changes


def flags_of_member(session: Session, member_id: int, year: int) -> dict[Rule, MemberFlag]:
    return {Rule(f.rule): f for f in session.scalars(
        select(MemberFlag).where(MemberFlag.member_id == member_id, MemberFlag.year == year))}


def raised_in(session: Session, cell_ids: Sequence[int], year: int) -> list[tuple[MemberFlag, str, str]]:
    """Flags at a warning or more in the cells: (flag, member name, cell name), worst first."""
    if not cell_ids:
        return []
    rows = session.execute(
        select(MemberFlag, Member.full_name, Organisation.name)
        .join(Member, Member.id == MemberFlag.member_id).join(Organisation, Organisation.id == MemberFlag.cell_id)
        .where(MemberFlag.cell_id.in_(cell_ids), MemberFlag.year == year, MemberFlag.level >= Level.WARNING)
        .order_by(MemberFlag.level.desc(), Organisation.name, Member.full_name)
    ).all()
    return [(f, name, cell) for f, name, cell in rows]


def after_period_change(session: Session, member_id: int, start_on: dt.date, end_on: dt.date | None) -> None:
    """A period was added, changed or removed: the years it touches may count differently —
    this year and last (where a decision can still follow) and any year with a flag."""
    today = local_today()
    last = min(end_on.year if end_on else today.year, today.year)
    known = set(session.scalars(select(MemberFlag.year).where(MemberFlag.member_id == member_id)))
    recent = range(max(start_on.year, today.year - 1), last + 1)
    for year in sorted(set(recent) | {y for y in known if start_on.year <= y <= last}):
        recheck(session, [member_id], year)


@events.subscribe(AbsenceCountChanged)
def _on_absence_count_changed(session: Session, event: AbsenceCountChanged) -> None:
    """A mark or a dues record can make a member's second or third month: raise the flag now,
    in the same transaction."""
    recheck(session, [event.member_id], event.year, event.now)


@events.subscribe(PeriodChanged)
def _on_period_changed(session: Session, event: PeriodChanged) -> None:
    after_period_change(session, event.member_id, event.start_on, event.end_on)


# --------------------------------------------------------------------------- notices


def _subject_and_body(change: Change, record: YearRecord, member_name: str, cell: Organisation, year: int,
                      greeting: str, link: str) -> tuple[str, str]:
    months = ", ".join(str(m) for m in change.months) or "không còn tháng nào"
    count = len(change.months)
    what = change.rule.short
    if change.after > change.before:
        if change.after == Level.REMOVAL_REVIEW:
            subject = f"[{cell.name}] Xem xét xóa tên: đồng chí {member_name} {what} {count} tháng năm {year}"
            opening = (f"Đồng chí {member_name} ({cell.name}) đã {what} {count} tháng trong năm {year} "
                       f"(tháng {months}). Theo Điều lệ Đảng (Điều 8) và Quy định 232-QĐ/TW, chi bộ xem xét, "
                       "đề nghị cấp có thẩm quyền xóa tên nếu không có lý do chính đáng.")
        else:
            subject = f"[{cell.name}] Cảnh báo: đồng chí {member_name} {what} {count} tháng năm {year}"
            opening = (f"Đồng chí {member_name} ({cell.name}) đã {what} {count} tháng trong năm {year} "
                       f"(tháng {months}). Nếu đủ 3 tháng trong năm, chi bộ phải xem xét xóa tên.")
    else:
        subject = f"[{cell.name}] Hạ mức theo dõi: đồng chí {member_name}, {what}, năm {year}"
        opening = (f"Sau khi cập nhật, đồng chí {member_name} ({cell.name}) còn {count} tháng {what} trong năm "
                   f"{year} ({months}): mức theo dõi nay là “{change.after.label}” (trước đó: "
                   f"“{change.before.label}”).")
    lines = [greeting, "", opening]
    if change.rule == Rule.ABSENCE and change.months:
        lines += ["", "Các buổi họp được tính:"]
        for month in change.months:
            for line in record.counted_lines(month):
                lines.append(f"  - Tháng {month}: {line.title} ({line.day:%d/%m/%Y})")
    lines += ["", "Nền tảng không tự động xóa tên: chi bộ xem xét, đề nghị; cấp ủy có thẩm quyền quyết định.",
              f"Xem hồ sơ năm của đảng viên: {link}", "",
              "Chi bộ trực tuyến — thư gửi tự động, xin đừng trả lời thư này."]
    return subject, "\n".join(lines)


def send_notices(session: Session, changes: Sequence[Change], records: dict[int, YearRecord], year: int,
           now: dt.datetime) -> list[Notice]:
    """Queue a notice per change for the cell's secretary and deputies and for the committee
    above the cell (each notice once: the key names member, year, rule, level and months)."""
    ids = {c.member_id for c in changes}
    people = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids)))}
    flags = {(f.member_id, f.rule): f for f in session.scalars(
        select(MemberFlag).where(MemberFlag.member_id.in_(ids), MemberFlag.year == year))}
    planned: list[Notice] = []
    for change in changes:
        flag = flags[(change.member_id, change.rule.value)]
        cell = session.get(Organisation, flag.cell_id)
        member = people[change.member_id]
        if cell is None:
            continue
        link = f"/members/{member.id}/record?year={year}"
        event = "flag_raised" if change.after > change.before else "flag_lowered"
        prefix = (f"flag:{year}:{member.id}:{change.rule.value}:{int(change.after)}:{event}:"
                  f"{'-'.join(str(m) for m in change.months)}")
        recipients: list[tuple[str, int | None, int | None, str | None]] = []
        leaders = cell_leader_ids(session, cell.id)
        for leader in session.scalars(select(Member).where(Member.id.in_(leaders))) if leaders else []:
            recipients.append((f"Kính gửi đồng chí {leader.full_name},", leader.id, None, leader.email))
        committee = session.get(Organisation, cell.parent_id) if cell.parent_id else None
        if committee is not None:
            recipients.append((f"Kính gửi {committee.name},", None, committee.id, committee.email))
        for greeting, member_to, org_to, email in recipients:
            subject, body = _subject_and_body(change, records[member.id], member.full_name, cell, year, greeting,
                                              f"{SITE}{link}")
            planned.append(Notice(
                key=f"{prefix}:{'m' if member_to else 'o'}{member_to or org_to}", meeting_id=None, url=link,
                event=event, sequence=0, member_id=member_to, organisation_id=org_to, email=email,
                subject=subject[:300], body=body, created_at=now,
                email_status=EmailStatus.PENDING if email else EmailStatus.NO_ADDRESS))
    existing = set(session.scalars(select(Notice.key).where(Notice.key.in_([n.key for n in planned])))) \
        if planned else set()
    created: list[Notice] = []
    for notice in planned:
        if notice.key not in existing:
            session.add(notice)
            existing.add(notice.key)
            created.append(notice)
    session.flush()
    return created
