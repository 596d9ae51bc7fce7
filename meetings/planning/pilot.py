"""The online pilot (Hướng dẫn 03-HD/TW, 27/12/2022; decision 5): approvals and qualification.

A cell may open remote participation only while an approval (decision number, date, approving
committee) covers the meeting's date. The platform also shows whether a cell *qualifies to
apply*: more than half of its members — exempt and suspended ones aside — cannot attend in
person. "Cannot attend in person" is read from away periods (đi làm ăn xa) covering the day.
Members on temporary transfer out are left out of the count as well: they are not expected
here at all (a platform decision; HD 03 names only exempt and suspended members).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.errors import ValidationError
from ..foundation.text import clean_text, optional_text, parse_date
from ..organisation.eligibility import Standing, electorate
from ..organisation.organisations import Organisation
from .meetings import PilotApproval, pilot_approval

APPROVAL_FIELDS = ("cell_id", "decision_number", "decided_on", "approving_org_id", "approving_body",
                   "valid_from", "valid_to", "note")


@dataclass(frozen=True)
class Qualification:
    counted: int
    away: int

    @property
    def qualifies(self) -> bool:
        return self.away * 2 > self.counted

    @property
    def text(self) -> str:
        verdict = "đủ điều kiện" if self.qualifies else "chưa đủ điều kiện"
        return (f"{self.away}/{self.counted} đảng viên (không tính người miễn sinh hoạt, đình chỉ, chuyển sinh hoạt "
                f"tạm thời) đang đi làm ăn xa, không thể dự họp trực tiếp: chi bộ {verdict} đề nghị thí điểm "
                "sinh hoạt trực tuyến (cần trên một nửa).")


def qualification(session: Session, cell_id: int, on: dt.date) -> Qualification:
    left_out = {Standing.EXEMPT, Standing.SUSPENDED, Standing.TRANSFERRED_OUT}
    counted = [e for e in electorate(session, cell_id, on).roll if e.standing not in left_out]
    return Qualification(counted=len(counted), away=sum(1 for e in counted if e.away))


def record_approval(session: Session, actor: Actor, cell: Organisation, *, decision_number: str,
                    decided_on: str | dt.date | None, approving_body: str, approving_org_id: int | None,
                    valid_from: str | dt.date | None, valid_to: str | dt.date | None,
                    note: str | None = None) -> PilotApproval:
    number = clean_text(decision_number)
    body = clean_text(approving_body)
    errors = []
    if not number:
        errors.append("Cần ghi số quyết định phê duyệt.")
    if not body:
        errors.append("Cần ghi cấp ủy phê duyệt.")
    try:
        decided = parse_date(decided_on, label="Ngày quyết định")
        start = parse_date(valid_from, label="Áp dụng từ ngày", required=False) or decided
        end = parse_date(valid_to, label="Đến ngày", required=False)
    except ValidationError as exc:
        errors.append(exc.message)
        decided = start = end = None
    if start and end and end < start:
        errors.append("“Đến ngày” phải sau “Áp dụng từ ngày”.")
    if errors:
        raise ValidationError(" ".join(errors))
    assert decided is not None and start is not None
    approval = PilotApproval(cell_id=cell.id, decision_number=number, decided_on=decided,
                             approving_org_id=approving_org_id, approving_body=body, valid_from=start,
                             valid_to=end, note=optional_text(note))
    session.add(approval)
    session.flush()
    audit.record(session, actor, "pilot.approve", approval, None, audit.snapshot(approval, APPROVAL_FIELDS))
    return approval


def end_approval(session: Session, actor: Actor, approval: PilotApproval, last_day: dt.date) -> None:
    if last_day < approval.valid_from:
        raise ValidationError("Ngày kết thúc phải sau ngày bắt đầu áp dụng.")
    before = audit.snapshot(approval, APPROVAL_FIELDS)
    approval.valid_to = last_day
    session.flush()
    audit.record(session, actor, "pilot.end", approval, before, audit.snapshot(approval, APPROVAL_FIELDS))


def approvals_of(session: Session, cell_id: int) -> list[PilotApproval]:
    return list(session.scalars(
        select(PilotApproval).where(PilotApproval.cell_id == cell_id).order_by(PilotApproval.valid_from.desc())
    ))


def current_approval(session: Session, cell_id: int, on: dt.date) -> PilotApproval | None:
    return pilot_approval(session, cell_id, on)
