"""Party members, their cell memberships and their dated periods.

A member belongs to one home cell at a time (``Membership`` keeps the dated history).
Periods — away, exempt, temporary transfer out, suspended — are dated and never overlap with
another period of the same kind. Who is expected at a meeting and who may vote is derived
from these in ``meetings.eligibility``; nothing else should re-derive it.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, false, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit, events
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import Conflict, NotFound, ValidationError
from ..foundation.text import (
    clean_text,
    fold,
    format_date,
    optional_text,
    parse_card_number,
    parse_date,
    parse_email,
    parse_phone,
)
from .organisations import Organisation, OrgKind


@dataclass(frozen=True)
class PeriodChanged:
    """An exemption, transfer or suspension of the member was added, changed or removed over
    these days: the months it touches may count differently toward the three-month rule."""

    member_id: int
    start_on: dt.date
    end_on: dt.date | None

class MemberStatus(enum.StrEnum):
    OFFICIAL = "official"
    PROBATIONARY = "probationary"

    @property
    def label(self) -> str:
        return {"official": "Chính thức", "probationary": "Dự bị"}[self.value]


class PeriodKind(enum.StrEnum):
    AWAY = "away"
    EXEMPT = "exempt"
    TRANSFER_OUT = "transfer_out"
    SUSPENDED = "suspended"

    @property
    def label(self) -> str:
        return PERIOD_LABELS[self]


PERIOD_LABELS = {
    PeriodKind.AWAY: "Đi làm ăn xa",
    PeriodKind.EXEMPT: "Miễn công tác và sinh hoạt đảng",
    PeriodKind.TRANSFER_OUT: "Chuyển sinh hoạt tạm thời",
    PeriodKind.SUSPENDED: "Đình chỉ sinh hoạt",
}


class ExemptKind(enum.StrEnum):
    FULL = "full"  # miễn công tác và sinh hoạt đảng (old age, health, ...)
    TEMPORARY = "temporary"  # tạm miễn sinh hoạt while away for under 12 months

    @property
    def label(self) -> str:
        return {"full": "Miễn công tác và sinh hoạt đảng", "temporary": "Tạm miễn sinh hoạt"}[self.value]


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200), index=True)
    birth_date: Mapped[dt.date] = mapped_column(Date)
    #: Unique when present; probationary members usually have no card yet.
    card_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    admitted_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[MemberStatus] = mapped_column(value_enum(MemberStatus))
    probation_ends_on: Mapped[dt.date | None] = mapped_column(Date)
    official_on: Mapped[dt.date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20))
    #: The member agreed that every cell-mate may see the phone number; otherwise only the
    #: member, the cell's secretary and deputies (and admins above) see it (finding 12.10).
    phone_shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    email: Mapped[str | None] = mapped_column(String(200))
    #: The current home cell; None for a member attached here from an organisation that is
    #: not on the platform (then ``home_org_name`` says where they belong).
    home_cell_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    home_org_name: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def status_on(self, on: dt.date) -> MemberStatus:
        """Official or probationary on a given day."""
        if self.status == MemberStatus.OFFICIAL and (self.official_on is None or self.official_on <= on):
            return MemberStatus.OFFICIAL
        return MemberStatus.PROBATIONARY

    def __repr__(self) -> str:
        return f"<Member {self.id} {self.full_name}>"


class Membership(Base):
    """A member's party activity in a home cell from ``start_on`` to ``end_on`` (inclusive)."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    start_on: Mapped[dt.date] = mapped_column(Date)
    end_on: Mapped[dt.date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(300))


class MemberPeriod(Base):
    __tablename__ = "member_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[PeriodKind] = mapped_column(value_enum(PeriodKind))
    start_on: Mapped[dt.date] = mapped_column(Date)
    #: Inclusive last day; None while open-ended.
    end_on: Mapped[dt.date | None] = mapped_column(Date)
    # AWAY: where the member works and who hosts them there.
    place: Mapped[str | None] = mapped_column(String(300))
    host_org_name: Mapped[str | None] = mapped_column(String(300))
    host_contact: Mapped[str | None] = mapped_column(String(300))
    expected_return_on: Mapped[dt.date | None] = mapped_column(Date)
    # EXEMPT / SUSPENDED / TRANSFER_OUT: the decision behind it.
    decision_number: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    exempt_kind: Mapped[ExemptKind | None] = mapped_column(value_enum(ExemptKind))
    #: TRANSFER_OUT to a cell on the platform: the member is attached there (SHT).
    host_cell_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def covers(self, on: dt.date) -> bool:
        return self.start_on <= on and (self.end_on is None or on <= self.end_on)

    @property
    def label(self) -> str:
        if self.kind == PeriodKind.EXEMPT and self.exempt_kind == ExemptKind.TEMPORARY:
            return ExemptKind.TEMPORARY.label
        return self.kind.label

    @property
    def span(self) -> str:
        end = format_date(self.end_on) if self.end_on else "nay"
        return f"{format_date(self.start_on)} – {end}"


MEMBER_FIELDS = (
    "full_name",
    "birth_date",
    "card_number",
    "admitted_on",
    "status",
    "probation_ends_on",
    "official_on",
    "phone",
    "email",
    "home_cell_id",
    "home_org_name",
)
PERIOD_FIELDS = (
    "member_id",
    "kind",
    "start_on",
    "end_on",
    "place",
    "host_org_name",
    "host_contact",
    "expected_return_on",
    "decision_number",
    "reason",
    "exempt_kind",
    "host_cell_id",
    "note",
)


# --------------------------------------------------------------------------- validation


@dataclass
class MemberInput:
    """A member's fields as typed in a form or a CSV row; ``validate`` turns them into values."""

    full_name: str = ""
    birth_date: str | dt.date | None = None
    card_number: str | None = None
    admitted_on: str | dt.date | None = None
    status: str | MemberStatus | None = None
    probation_ends_on: str | dt.date | None = None
    official_on: str | dt.date | None = None
    phone: str | None = None
    email: str | None = None

    def validate(self, today: dt.date) -> dict[str, Any]:
        """Return clean values, or raise ValidationError listing every problem at once."""
        errors: list[str] = []
        values: dict[str, Any] = {}

        def attempt(name: str, fn: Any) -> None:
            try:
                values[name] = fn()
            except ValidationError as exc:
                errors.append(exc.message)

        name = clean_text(self.full_name)
        if not name:
            errors.append("Họ và tên: không được để trống.")
        elif len(name) > 200:
            errors.append("Họ và tên: quá dài (tối đa 200 ký tự).")
        values["full_name"] = name
        attempt("birth_date", lambda: parse_date(self.birth_date, label="Ngày sinh"))
        attempt("admitted_on", lambda: parse_date(self.admitted_on, label="Ngày vào Đảng"))
        attempt("card_number", lambda: parse_card_number(self.card_number))
        attempt("status", lambda: parse_status(self.status))
        attempt(
            "probation_ends_on",
            lambda: parse_date(self.probation_ends_on, label="Ngày hết thời hạn dự bị", required=False),
        )
        attempt("official_on", lambda: parse_date(self.official_on, label="Ngày chính thức", required=False))
        attempt("phone", lambda: parse_phone(self.phone))
        attempt("email", lambda: parse_email(self.email))

        birth, admitted = values.get("birth_date"), values.get("admitted_on")
        if birth and birth >= today:
            errors.append("Ngày sinh phải trước ngày hôm nay.")
        if admitted and admitted > today:
            errors.append("Ngày vào Đảng không thể ở tương lai.")
        if birth and admitted and admitted < birth + relativedelta(years=18):
            errors.append("Ngày vào Đảng phải sau ngày đủ 18 tuổi.")
        status = values.get("status")
        if status == MemberStatus.OFFICIAL and not values.get("card_number"):
            errors.append("Đảng viên chính thức phải có số thẻ đảng viên.")
        if status == MemberStatus.PROBATIONARY and admitted and not values.get("probation_ends_on"):
            # Probation lasts twelve months from admission (Điều lệ Đảng, Điều 5).
            values["probation_ends_on"] = admitted + relativedelta(months=12)
        if status == MemberStatus.OFFICIAL:
            values["probation_ends_on"] = None
            if admitted and not values.get("official_on"):
                values["official_on"] = admitted + relativedelta(months=12)
        if errors:
            raise ValidationError(" ".join(errors))
        return values


def parse_status(value: str | MemberStatus | None) -> MemberStatus:
    if isinstance(value, MemberStatus):
        return value

    key = fold(value or "")
    if key in {"chinh thuc", "official", "ct"}:
        return MemberStatus.OFFICIAL
    if key in {"du bi", "probationary", "db"}:
        return MemberStatus.PROBATIONARY
    shown = clean_text(value) or "(trống)"
    raise ValidationError(f"Trạng thái “{shown}” không hợp lệ (chỉ nhận “chính thức” hoặc “dự bị”).")


# --------------------------------------------------------------------------- operations


def get_member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound()
    return member


def _check_card_free(session: Session, card: str | None, member_id: int | None = None) -> None:
    if card is None:
        return
    stmt = select(Member.id).where(Member.card_number == card)
    if member_id is not None:
        stmt = stmt.where(Member.id != member_id)
    if session.scalar(stmt) is not None:
        raise Conflict(f"Số thẻ đảng viên {card} đã thuộc về một đảng viên khác.", field="card_number")


def create_member(
    session: Session,
    actor: Actor,
    cell: Organisation,
    data: MemberInput,
    *,
    today: dt.date,
    joined_on: dt.date | None = None,
) -> Member:
    """Add a member to ``cell``; party activity there starts on ``joined_on`` (default: admission)."""
    if cell.kind != OrgKind.CELL:
        raise ValidationError("Đảng viên chỉ sinh hoạt tại chi bộ.")
    values = data.validate(today)
    _check_card_free(session, values["card_number"])
    member = Member(home_cell_id=cell.id, **values)
    session.add(member)
    session.flush()
    session.add(
        Membership(member_id=member.id, cell_id=cell.id, start_on=joined_on or values["admitted_on"])
    )
    audit.record(session, actor, "member.create", member, None, audit.snapshot(member, MEMBER_FIELDS))
    session.flush()
    return member


def update_member(session: Session, actor: Actor, member: Member, data: MemberInput, *, today: dt.date) -> Member:
    values = data.validate(today)
    _check_card_free(session, values["card_number"], member.id)
    before = audit.snapshot(member, MEMBER_FIELDS)
    for key, value in values.items():
        setattr(member, key, value)
    session.flush()
    after = audit.snapshot(member, MEMBER_FIELDS)
    if after != before:
        audit.record(session, actor, "member.update", member, before, after)
    return member


def create_attached_member(
    session: Session,
    actor: Actor,
    host_cell: Organisation,
    data: MemberInput,
    *,
    home_org_name: str,
    start_on: dt.date,
    end_on: dt.date | None,
    today: dt.date,
) -> Member:
    """Record a member attached to ``host_cell`` from an organisation not on the platform (SHT)."""
    home = clean_text(home_org_name)
    if not home:
        raise ValidationError("Cần ghi tổ chức đảng nơi đảng viên sinh hoạt chính thức.", field="home_org_name")
    values = data.validate(today)
    _check_card_free(session, values["card_number"])
    member = Member(home_cell_id=None, home_org_name=home, **values)
    session.add(member)
    session.flush()
    audit.record(session, actor, "member.create", member, None, audit.snapshot(member, MEMBER_FIELDS),
                 organisation_id=host_cell.id)
    add_period(
        session,
        actor,
        member,
        PeriodInput(kind=PeriodKind.TRANSFER_OUT, start_on=start_on, end_on=end_on,
                    host_org_name=host_cell.name, host_cell_id=host_cell.id),
        organisation_id=host_cell.id,
    )
    return member


def memberships(session: Session, member: Member) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership).where(Membership.member_id == member.id).order_by(Membership.start_on)
        )
    )


def move_member(
    session: Session, actor: Actor, member: Member, new_cell: Organisation, on: dt.date, reason: str
) -> None:
    """Official transfer of party activity to another cell from day ``on``."""
    if new_cell.kind != OrgKind.CELL:
        raise ValidationError("Chỉ chuyển được đến một chi bộ.")
    if member.home_cell_id == new_cell.id:
        raise ValidationError("Đảng viên đã sinh hoạt tại chi bộ này.")
    before = audit.snapshot(member, MEMBER_FIELDS)
    _end_current_membership(session, member, on - dt.timedelta(days=1), clean_text(reason) or None)
    session.add(Membership(member_id=member.id, cell_id=new_cell.id, start_on=on))
    member.home_cell_id = new_cell.id
    session.flush()
    audit.record(session, actor, "member.move", member, before, audit.snapshot(member, MEMBER_FIELDS),
                 note=reason)


def _end_current_membership(session: Session, member: Member, last_day: dt.date, reason: str | None) -> None:
    current = session.scalars(
        select(Membership).where(Membership.member_id == member.id, Membership.end_on.is_(None))
    ).all()
    for m in current:
        if last_day < m.start_on:
            raise ValidationError("Ngày kết thúc sinh hoạt phải sau ngày bắt đầu sinh hoạt tại chi bộ.")
        m.end_on = last_day
        m.end_reason = reason


# --------------------------------------------------------------------------- periods


@dataclass
class PeriodInput:
    kind: PeriodKind | str
    start_on: str | dt.date | None = None
    end_on: str | dt.date | None = None
    place: str | None = None
    host_org_name: str | None = None
    host_contact: str | None = None
    expected_return_on: str | dt.date | None = None
    decision_number: str | None = None
    reason: str | None = None
    exempt_kind: ExemptKind | str | None = None
    host_cell_id: int | None = None
    note: str | None = None

    def validate(self) -> dict[str, Any]:
        errors: list[str] = []
        try:
            kind = PeriodKind(self.kind)
        except ValueError:
            raise ValidationError("Loại giai đoạn không hợp lệ.") from None
        values: dict[str, Any] = {"kind": kind}
        for name, label, required in (
            ("start_on", "Từ ngày", True),
            ("end_on", "Đến ngày", False),
            ("expected_return_on", "Dự kiến trở về", False),
        ):
            try:
                values[name] = parse_date(getattr(self, name), label=label, required=required)
            except ValidationError as exc:
                errors.append(exc.message)
        for name in ("place", "host_org_name", "host_contact", "decision_number", "reason", "note"):
            values[name] = optional_text(getattr(self, name))
        values["host_cell_id"] = self.host_cell_id
        values["exempt_kind"] = None
        if kind == PeriodKind.AWAY and not values["place"]:
            errors.append("Cần ghi nơi đi làm ăn xa.")
        if kind == PeriodKind.EXEMPT:
            if not values["decision_number"]:
                errors.append("Cần ghi số quyết định (nghị quyết) miễn sinh hoạt.")
            if not values["reason"]:
                errors.append("Cần ghi lý do miễn sinh hoạt.")
            try:
                values["exempt_kind"] = ExemptKind(self.exempt_kind or ExemptKind.FULL)
            except ValueError:
                errors.append("Hình thức miễn không hợp lệ.")
        if kind == PeriodKind.TRANSFER_OUT and not (values["host_org_name"] or values["host_cell_id"]):
            errors.append("Cần ghi tổ chức đảng nơi đến sinh hoạt tạm thời.")
        if kind == PeriodKind.SUSPENDED and not (values["decision_number"] or values["reason"]):
            errors.append("Cần ghi số quyết định hoặc lý do đình chỉ sinh hoạt.")
        start, end = values.get("start_on"), values.get("end_on")
        if start and end and end < start:
            errors.append("“Đến ngày” phải sau hoặc bằng “Từ ngày”.")
        if errors:
            raise ValidationError(" ".join(errors))
        return values


def periods_of(session: Session, member_id: int, kind: PeriodKind | None = None) -> list[MemberPeriod]:
    stmt = select(MemberPeriod).where(MemberPeriod.member_id == member_id)
    if kind is not None:
        stmt = stmt.where(MemberPeriod.kind == kind)
    return list(session.scalars(stmt.order_by(MemberPeriod.start_on)))


def _check_no_overlap(session: Session, member_id: int, values: dict[str, Any], period_id: int | None) -> None:
    start: dt.date = values["start_on"]
    end: dt.date | None = values["end_on"]
    stmt = select(MemberPeriod).where(
        MemberPeriod.member_id == member_id,
        MemberPeriod.kind == values["kind"],
        or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= start),
    )
    if end is not None:
        stmt = stmt.where(MemberPeriod.start_on <= end)
    if period_id is not None:
        stmt = stmt.where(MemberPeriod.id != period_id)
    clash = session.scalars(stmt).first()
    if clash is not None:
        raise ValidationError(
            f"Giai đoạn “{clash.label}” này trùng với giai đoạn đã có ({clash.span}). "
            "Các giai đoạn cùng loại không được chồng lên nhau."
        )


def add_period(
    session: Session,
    actor: Actor,
    member: Member,
    data: PeriodInput,
    *,
    organisation_id: int | None = None,
) -> MemberPeriod:
    values = data.validate()
    _check_no_overlap(session, member.id, values, None)
    period = MemberPeriod(member_id=member.id, **values)
    session.add(period)
    session.flush()
    audit.record(
        session, actor, "period.create", period, None, audit.snapshot(period, PERIOD_FIELDS),
        organisation_id=organisation_id or member.home_cell_id,
    )
    _periods_changed(session, period, member.id, period.start_on, period.end_on)
    return period


def _periods_changed(session: Session, period: MemberPeriod, member_id: int, start_on: dt.date,
                     end_on: dt.date | None) -> None:
    """An exemption, transfer or suspension changes which months count toward the
    three-month rule: published for ``evaluation.three_month``."""
    if period.kind == PeriodKind.AWAY:
        return
    events.publish(session, PeriodChanged(member_id, start_on, end_on))


def update_period(session: Session, actor: Actor, period: MemberPeriod, data: PeriodInput) -> MemberPeriod:
    values = data.validate()
    if values["kind"] != period.kind:
        raise ValidationError("Không thể đổi loại của một giai đoạn; hãy kết thúc và tạo giai đoạn mới.")
    if period.host_cell_id is not None and values["host_cell_id"] is None:
        values["host_cell_id"] = period.host_cell_id
    _check_no_overlap(session, period.member_id, values, period.id)
    before = audit.snapshot(period, PERIOD_FIELDS)
    for key, value in values.items():
        setattr(period, key, value)
    session.flush()
    member = session.get(Member, period.member_id)
    audit.record(
        session, actor, "period.update", period, before, audit.snapshot(period, PERIOD_FIELDS),
        organisation_id=member.home_cell_id if member else None,
    )
    earliest = min(period.start_on, dt.date.fromisoformat(before["start_on"]))
    _periods_changed(session, period, period.member_id, earliest, None if period.end_on is None or before["end_on"] is None
                     else max(period.end_on, dt.date.fromisoformat(before["end_on"])))
    return period


def delete_period(session: Session, actor: Actor, period: MemberPeriod) -> None:
    """Remove a period entered by mistake (kept in the audit log)."""
    before = audit.snapshot(period, PERIOD_FIELDS)
    member = session.get(Member, period.member_id)
    audit.record(session, actor, "period.delete", period, before, None,
                 organisation_id=(member.home_cell_id if member else None) or period.host_cell_id)
    session.delete(period)
    session.flush()
    _periods_changed(session, period, period.member_id, period.start_on, period.end_on)


def get_period(session: Session, period_id: int) -> MemberPeriod:
    period = session.get(MemberPeriod, period_id)
    if period is None:
        raise NotFound()
    return period


def current_periods(session: Session, member_ids: list[int], on: dt.date) -> dict[int, list[MemberPeriod]]:
    """Periods covering ``on`` for each member, in one query."""
    result: dict[int, list[MemberPeriod]] = {mid: [] for mid in member_ids}
    if not member_ids:
        return result
    rows = session.scalars(
        select(MemberPeriod).where(
            MemberPeriod.member_id.in_(member_ids),
            MemberPeriod.start_on <= on,
            or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= on),
        ).order_by(MemberPeriod.start_on)
    )
    for period in rows:
        result[period.member_id].append(period)
    return result
