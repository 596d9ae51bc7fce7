"""Settings of the yearly evaluation that a committee may change for its subtree.

shared/domain/cases.md asks that every default that is a guess be a setting per province or
per cell. Two such defaults concern the yearly record:

* **Which absences count toward the three-month rule** (decision 9; Quy định 232-QĐ/TW
  implementing Điều lệ Đảng, Điều 8): unexcused absences from *regular* meetings (a regular
  meeting combined with the quarter's thematic session included); absences from separate
  *thematic* meetings only when ``count_thematic`` is set. Extraordinary and chi ủy meetings
  never count.
* **The review date** of the year-end review (Quy định 124-QĐ/TW): eligibility is judged on
  that day (decision 10). Default 15 December; local guidance sets the real date each year.

A policy row belongs to an organisation and applies to its whole subtree; the nearest one
above a cell wins, so a province sets the rule and a commune or cell may differ.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Boolean, ForeignKey, Integer, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow
from ..foundation.errors import ValidationError
from ..foundation.text import clean_text
from ..organisation.organisations import Organisation

DEFAULT_REVIEW_MONTH = 12
DEFAULT_REVIEW_DAY = 15


class EvaluationPolicy(Base):
    __tablename__ = "evaluation_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    #: Absences from separate thematic meetings count toward the three-month rule.
    count_thematic: Mapped[bool] = mapped_column(Boolean, default=False)
    review_month: Mapped[int] = mapped_column(Integer, default=DEFAULT_REVIEW_MONTH)
    review_day: Mapped[int] = mapped_column(Integer, default=DEFAULT_REVIEW_DAY)
    #: The decision or guidance the setting follows.
    basis: Mapped[str | None] = mapped_column(Text)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class Policy:
    count_thematic: bool = False
    review_month: int = DEFAULT_REVIEW_MONTH
    review_day: int = DEFAULT_REVIEW_DAY
    #: The organisation whose setting applies (None: the platform default).
    source_id: int | None = None
    basis: str | None = None

    def review_date(self, year: int) -> dt.date:
        try:
            return dt.date(year, self.review_month, self.review_day)
        except ValueError:  # 29 February in a common year
            return dt.date(year, self.review_month, 28)


DEFAULT = Policy()


def _path_ids(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p]


def policies_for(session: Session, org_ids: list[int]) -> dict[int, Policy]:
    """The policy in force for each organisation (nearest setting on its path), two queries."""
    if not org_ids:
        return {}
    paths = dict(session.execute(select(Organisation.id, Organisation.path).where(Organisation.id.in_(org_ids))).all())
    wanted = {i for path in paths.values() for i in _path_ids(path)}
    rows = {p.organisation_id: p for p in session.scalars(
        select(EvaluationPolicy).where(EvaluationPolicy.organisation_id.in_(wanted)))} if wanted else {}
    result: dict[int, Policy] = {}
    for org_id in org_ids:
        found = DEFAULT
        for ancestor in reversed(_path_ids(paths.get(org_id, ""))):
            row = rows.get(ancestor)
            if row is not None:
                found = Policy(row.count_thematic, row.review_month, row.review_day, ancestor, row.basis)
                break
        result[org_id] = found
    return result


def policy_for(session: Session, org_id: int | None) -> Policy:
    if org_id is None:
        return DEFAULT
    return policies_for(session, [org_id]).get(org_id, DEFAULT)


def set_policy(session: Session, actor: Actor, org: Organisation, *, count_thematic: bool,
               review_date: str | None, basis: str | None) -> EvaluationPolicy:
    """Record the setting for ``org``'s subtree. ``review_date`` is "dd/mm"."""
    text = clean_text(review_date) or f"{DEFAULT_REVIEW_DAY}/{DEFAULT_REVIEW_MONTH}"
    try:
        day_text, month_text = text.replace("-", "/").split("/")[:2]
        day, month = int(day_text), int(month_text)
        dt.date(2024, month, day)  # a leap year, so 29/02 is accepted
    except ValueError:
        raise ValidationError("Ngày kiểm điểm cuối năm phải có dạng ngày/tháng, ví dụ 15/12.",
                              field="review_date") from None
    basis_text = clean_text(basis)
    if not basis_text:
        raise ValidationError("Hãy ghi căn cứ (văn bản, quyết định) của thiết lập này.", field="basis")
    row = session.scalar(select(EvaluationPolicy).where(EvaluationPolicy.organisation_id == org.id))
    before = None
    if row is None:
        row = EvaluationPolicy(organisation_id=org.id)
        session.add(row)
    else:
        before = audit.snapshot(row, ("count_thematic", "review_month", "review_day", "basis"))
    row.count_thematic, row.review_month, row.review_day = count_thematic, month, day
    row.basis, row.set_by_id, row.set_at = basis_text[:1000], actor.account_id, utcnow()
    session.flush()
    audit.record(session, actor, "evaluation.policy", row, before,
                 audit.snapshot(row, ("count_thematic", "review_month", "review_day", "basis")),
                 organisation_id=org.id)
    return row
