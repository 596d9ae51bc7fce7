"""The year-end review (kiểm điểm, đánh giá, xếp loại đảng viên) under Quy định 124-QĐ/TW.

Three steps, each recorded with who and when (regulations.md §6): the member submits a
self-assessment (bản tự kiểm điểm) — the form below with the standard headings, or a signed
file (PDF, DOCX or JPEG, checked by content and size) — and grades themself; the cell
proposes a classification with its reason; the competent committee confirms it. An away or
transferred member's host organisation can add its comments (nhận xét), from either side.

The platform never computes a grade (decision 10). It shows the member's yearly figures
(``meetings.records``) beside every grade and keeps them with the cell's proposal; a grade
that the figures contradict — "excellent" with a warning or a "xem xét xóa tên" flag, "good"
with a flag — is accepted only with an explicit justification.

Who is reviewed (decision 10, case C7; QĐ 124 Điều 5 khoản 2): everyone except members
exempt at the review date, members suspended at the review date, and members admitted less
than six months before it. The review date is a policy (``meetings.policies``).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, JSONType, UTCDateTime, utcnow, value_enum
from ..foundation.errors import NotFound, ValidationError
from ..foundation.text import clean_text
from ..organisation.members import Member, MemberPeriod, PeriodKind
from ..planning import documents
from .policies import DEFAULT, policies_for
from .records import YearRecord
from .three_month import Level, level_for

#: Files a signed self-assessment may be: a scan or photo (JPEG), or the document itself.
FILE_KINDS = ("pdf", "docx", "jpeg")
MAX_TEXT = 10_000
#: Probation and review: less than six months since admission means no review (QĐ 124).
MIN_MONTHS_ADMITTED = 6



class Grade(enum.StrEnum):
    EXCELLENT = "htxsnv"
    GOOD = "httnv"
    COMPLETED = "htnv"
    NOT_COMPLETED = "khtnv"

    @property
    def label(self) -> str:
        return {"htxsnv": "Hoàn thành xuất sắc nhiệm vụ", "httnv": "Hoàn thành tốt nhiệm vụ",
                "htnv": "Hoàn thành nhiệm vụ", "khtnv": "Không hoàn thành nhiệm vụ"}[self.value]

    @property
    def short(self) -> str:
        return self.value.upper()


#: The headings of the bản tự kiểm điểm for a party member (Mẫu 02, Hướng dẫn 21-HD/BTCTW,
#: 2019, as QĐ 124's guidance keeps them); the last section, the self-grade, is a field.
HEADINGS: tuple[tuple[str, str, str], ...] = (
    ("politics", "I.1. Về tư tưởng chính trị; phẩm chất đạo đức, lối sống; ý thức tổ chức kỷ luật; tác phong, "
                 "lề lối làm việc", "Ưu điểm, kết quả đạt được"),
    ("duties", "I.2. Về thực hiện chức trách, nhiệm vụ được giao", "Ưu điểm, kết quả đạt được"),
    ("pledge", "I.3. Về thực hiện cam kết tu dưỡng, rèn luyện, phấn đấu hằng năm", "Ưu điểm, kết quả đạt được"),
    ("shortcomings", "II. Hạn chế, khuyết điểm và nguyên nhân", "Hạn chế, khuyết điểm"),
    ("remedies_past", "III. Kết quả khắc phục những hạn chế, khuyết điểm đã được cấp có thẩm quyền kết luận "
                      "hoặc chỉ ra ở các kỳ kiểm điểm trước", "Khắc phục"),
    ("explanations", "IV. Giải trình những vấn đề được gợi ý kiểm điểm (nếu có)", "Giải trình"),
    ("collective", "V. Làm rõ trách nhiệm của cá nhân đối với những hạn chế, khuyết điểm của tập thể (nếu có)",
     "Trách nhiệm"),
    ("plans", "VI. Phương hướng, biện pháp khắc phục hạn chế, khuyết điểm", "Phương hướng"),
)
#: Sections a form must fill in (the others say "nếu có").
REQUIRED = ("politics", "duties", "pledge", "shortcomings", "plans")


class ReviewStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"

    @property
    def label(self) -> str:
        return {"draft": "Chưa nộp bản tự kiểm điểm", "submitted": "Đã nộp bản tự kiểm điểm",
                "proposed": "Chi bộ đã đề xuất xếp loại", "confirmed": "Cấp ủy đã quyết định"}[self.value]


class YearReview(Base):
    __tablename__ = "year_reviews"
    __table_args__ = (UniqueConstraint("member_id", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    #: The cell where the member is reviewed (the home cell when the review began).
    cell_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[ReviewStatus] = mapped_column(value_enum(ReviewStatus), default=ReviewStatus.DRAFT)
    # Step 1: the self-assessment, as a form or a signed file, and the self-grade.
    self_form: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)
    self_grade: Mapped[Grade | None] = mapped_column(value_enum(Grade))
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_kind: Mapped[str | None] = mapped_column(String(10))
    file_size: Mapped[int | None] = mapped_column(Integer)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_stored: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # Step 2: the cell's proposal, with the figures it was made on.
    proposed_grade: Mapped[Grade | None] = mapped_column(value_enum(Grade))
    proposal_reason: Mapped[str | None] = mapped_column(Text)
    proposal_justification: Mapped[str | None] = mapped_column(Text)
    proposal_figures: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    proposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Step 3: the committee's decision.
    confirmed_grade: Mapped[Grade | None] = mapped_column(value_enum(Grade))
    confirmation_note: Mapped[str | None] = mapped_column(Text)
    confirmation_justification: Mapped[str | None] = mapped_column(Text)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    confirming_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class HostComment(Base):
    """Comments (nhận xét) from the organisation an away or transferred member lived or
    worked with, typed in or attached as a scanned letter."""

    __tablename__ = "host_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    host_name: Mapped[str] = mapped_column(String(300))
    #: The host cell, when it is on the platform and wrote the comment itself.
    host_cell_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    text: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_kind: Mapped[str | None] = mapped_column(String(10))
    file_stored: Mapped[str | None] = mapped_column(String(100))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


REVIEW_FIELDS = ("status", "self_grade", "file_name", "file_sha256", "submitted_at", "proposed_grade",
                 "proposal_reason", "proposal_justification", "confirmed_grade", "confirmation_note",
                 "confirmation_justification", "confirming_org_id")


# --------------------------------------------------------------------------- eligibility


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    review_date: dt.date
    reason: str | None = None


def eligibility(session: Session, member: Member, year: int) -> Eligibility:
    """Whether the member takes part in the year's review (QĐ 124 Điều 5 khoản 2, case C7)."""
    return eligibilities(session, [member], year)[member.id]


def eligibilities(session: Session, people: Sequence[Member], year: int) -> dict[int, Eligibility]:
    """:func:`eligibility` for many members in three queries."""
    if not people:
        return {}
    policies = policies_for(session, list({m.home_cell_id for m in people if m.home_cell_id is not None}))
    dates = {m.id: policies.get(m.home_cell_id, DEFAULT).review_date(year) if m.home_cell_id else
             DEFAULT.review_date(year) for m in people}
    latest = max(dates.values())
    periods: dict[int, list[MemberPeriod]] = {m.id: [] for m in people}
    for period in session.scalars(select(MemberPeriod).where(
            MemberPeriod.member_id.in_([m.id for m in people]),
            MemberPeriod.kind.in_([PeriodKind.EXEMPT, PeriodKind.SUSPENDED]), MemberPeriod.start_on <= latest)):
        periods[period.member_id].append(period)
    return {m.id: _judge(m, [p for p in periods[m.id] if p.covers(dates[m.id])], dates[m.id]) for m in people}


def _judge(member: Member, covering: list[MemberPeriod], review_date: dt.date) -> Eligibility:
    if any(p.kind == PeriodKind.SUSPENDED for p in covering):
        return Eligibility(False, review_date, "Đang bị đình chỉ sinh hoạt đảng vào thời điểm kiểm điểm.")
    exempt = next((p for p in covering if p.kind == PeriodKind.EXEMPT), None)
    if exempt is not None:
        return Eligibility(False, review_date, f"Được miễn sinh hoạt đảng vào thời điểm kiểm điểm ({exempt.label}, "
                                               f"từ {exempt.start_on:%d/%m/%Y}).")
    if member.admitted_on > review_date - relativedelta(months=MIN_MONTHS_ADMITTED):
        return Eligibility(False, review_date, f"Vào Đảng ngày {member.admitted_on:%d/%m/%Y}, chưa đủ "
                                               f"{MIN_MONTHS_ADMITTED} tháng đến ngày kiểm điểm "
                                               f"{review_date:%d/%m/%Y}.")
    return Eligibility(True, review_date)


# --------------------------------------------------------------------------- consistency


def inconsistency(grade: Grade | None, record: YearRecord) -> str | None:
    """Why ``grade`` does not sit well with the year's figures, or None.

    The platform does not grade; it asks for a justification when the grade is higher than
    the three-month counters suggest (decision 10): HTXSNV with a warning or a flag on
    either counter, HTTNV with a "xem xét xóa tên" flag.
    """
    if grade is None:
        return None
    worst = max(level_for(len(record.absence_months)), level_for(len(record.dues_months)))
    if (grade == Grade.EXCELLENT and worst >= Level.WARNING) or (grade == Grade.GOOD
                                                                  and worst >= Level.REMOVAL_REVIEW):
        return (f"Mức “{grade.label}” chưa phù hợp với số liệu năm {record.year}: {counters(record)} "
                f"({worst.label.lower()}). Cần ghi rõ lý do giải trình.")
    return None


def counters(record: YearRecord) -> str:
    """The three-month counters that reached a warning, in words ("" when none did)."""
    facts = []
    if level_for(len(record.absence_months)) > Level.NONE:
        facts.append(f"vắng sinh hoạt không lý do {len(record.absence_months)} tháng "
                     f"(tháng {', '.join(map(str, record.absence_months))})")
    if level_for(len(record.dues_months)) > Level.NONE:
        facts.append(f"không đóng đảng phí {len(record.dues_months)} tháng "
                     f"(tháng {', '.join(map(str, record.dues_months))})")
    return "; ".join(facts)


# --------------------------------------------------------------------------- operations


def get_review(session: Session, member_id: int, year: int) -> YearReview | None:
    return session.scalar(select(YearReview).where(YearReview.member_id == member_id, YearReview.year == year))


def _review_for_update(session: Session, member: Member, year: int) -> YearReview:
    review = get_review(session, member.id, year)
    if review is None:
        if member.home_cell_id is None:
            raise ValidationError("Đảng viên sinh hoạt chính thức ngoài hệ thống: kiểm điểm tại tổ chức đảng nơi "
                                  "sinh hoạt chính thức.")
        review = YearReview(member_id=member.id, year=year, cell_id=member.home_cell_id, status=ReviewStatus.DRAFT)
        session.add(review)
    return review


def _grade(value: str | Grade | None, label: str, field: str) -> Grade:
    try:
        return Grade(value or "")
    except ValueError:
        raise ValidationError(f"Hãy chọn {label} (một trong bốn mức xếp loại).", field=field) from None


def _check_year(year: int, today: dt.date) -> None:
    if not 2000 <= year <= today.year:
        raise ValidationError("Năm kiểm điểm không hợp lệ.")


def submit_self_assessment(session: Session, actor: Actor, member: Member, year: int, *, form: dict[str, str] | None,
                           self_grade: str | None, file: tuple[str, bytes] | None, root: Path, max_bytes: int,
                           today: dt.date, now: dt.datetime) -> YearReview:
    """Step 1. Either the form (the required sections filled in) or a signed file, and the
    self-grade. Replaces an earlier submission until the cell has proposed a grade."""
    _check_year(year, today)
    allowed = eligibility(session, member, year)
    if not allowed.eligible:
        raise ValidationError(f"Đồng chí {member.full_name} không thuộc diện kiểm điểm năm {year}: {allowed.reason}")
    grade = _grade(self_grade, "mức tự xếp loại", "self_grade")
    sections = {key: clean_text(value)[:MAX_TEXT] for key, value in (form or {}).items()
                if key in dict((h[0], h) for h in HEADINGS) and clean_text(value)}
    if file is None and not sections:
        raise ValidationError("Hãy điền bản tự kiểm điểm theo các mục hoặc tải lên bản có chữ ký (PDF, DOCX, JPEG).")
    if file is None:
        missing = [title for key, title, _ in HEADINGS if key in REQUIRED and key not in sections]
        if missing:
            raise ValidationError("Bản tự kiểm điểm còn thiếu: " + "; ".join(missing) + ".")
    if file is not None:
        name, kind = documents.check_upload(file[0], file[1], max_bytes=max_bytes, kinds=FILE_KINDS)
    review = _review_for_update(session, member, year)
    if review.status in (ReviewStatus.PROPOSED, ReviewStatus.CONFIRMED):
        raise ValidationError("Chi bộ đã đề xuất xếp loại: bản tự kiểm điểm không thay đổi được nữa.")
    before = audit.snapshot(review, REVIEW_FIELDS) if review.id else None
    if file is not None:
        stored = documents.store(root, "reviews", f"{member.id}-{year}", file[1])
        review.file_name, review.file_kind, review.file_size = name, kind, len(file[1])
        review.file_sha256, review.file_stored = hashlib.sha256(file[1]).hexdigest(), stored
    else:  # the form replaces an earlier file (which stays on disk, named in the audit log)
        review.file_name = review.file_kind = review.file_sha256 = review.file_stored = None
        review.file_size = None
    review.self_form = sections or None
    review.self_grade = grade
    review.status = ReviewStatus.SUBMITTED
    review.submitted_at, review.submitted_by_id, review.updated_at = now, actor.account_id, now
    session.flush()
    audit.record(session, actor, "review.self", review, before, audit.snapshot(review, REVIEW_FIELDS),
                 organisation_id=review.cell_id)
    return review


def add_host_comment(session: Session, actor: Actor, member: Member, year: int, *, host_name: str | None,
                     text: str | None, file: tuple[str, bytes] | None, host_cell_id: int | None, root: Path,
                     max_bytes: int, today: dt.date, now: dt.datetime) -> HostComment:
    _check_year(year, today)
    name = clean_text(host_name)
    if not name:
        raise ValidationError("Hãy ghi tên tổ chức, đơn vị nhận xét.", field="host_name")
    body = clean_text(text)[:MAX_TEXT]
    if not body and file is None:
        raise ValidationError("Hãy nhập nội dung nhận xét hoặc tải lên văn bản nhận xét.", field="text")
    comment = HostComment(member_id=member.id, year=year, host_name=name[:300], host_cell_id=host_cell_id,
                          text=body or None, author_id=actor.account_id, created_at=now)
    if file is not None:
        filename, kind = documents.check_upload(file[0], file[1], max_bytes=max_bytes, kinds=FILE_KINDS)
        comment.file_name, comment.file_kind = filename, kind
        comment.file_stored = documents.store(root, "reviews", f"{member.id}-{year}-host", file[1])
    session.add(comment)
    session.flush()
    audit.record(session, actor, "review.host_comment", comment, None,
                 {"host_name": comment.host_name, "file": comment.file_name, "year": year},
                 organisation_id=host_cell_id or member.home_cell_id)
    return comment


def host_comments(session: Session, member_id: int, year: int) -> list[HostComment]:
    return list(session.scalars(select(HostComment).where(HostComment.member_id == member_id,
                                                          HostComment.year == year).order_by(HostComment.id)))


def propose(session: Session, actor: Actor, member: Member, year: int, record: YearRecord, *, grade: str | None,
            reason: str | None, justification: str | None, now: dt.datetime) -> YearReview:
    """Step 2: the cell's proposal, with a reason, and a justification where the figures
    contradict the grade; the figures are kept with it."""
    review = get_review(session, member.id, year)
    if review is None or review.status == ReviewStatus.DRAFT:
        raise ValidationError(f"Đồng chí {member.full_name} chưa nộp bản tự kiểm điểm năm {year}.")
    if review.status == ReviewStatus.CONFIRMED:
        raise ValidationError("Cấp ủy đã quyết định xếp loại; chi bộ không đề xuất lại được.")
    chosen = _grade(grade, "mức chi bộ đề xuất", "proposed_grade")
    why = clean_text(reason)
    if not why:
        raise ValidationError("Hãy ghi lý do đề xuất xếp loại.", field="proposal_reason")
    problem = inconsistency(chosen, record)
    explained = clean_text(justification)
    if problem and not explained:
        raise ValidationError(problem, field="proposal_justification")
    before = audit.snapshot(review, REVIEW_FIELDS)
    review.proposed_grade, review.proposal_reason = chosen, why[:MAX_TEXT]
    review.proposal_justification = explained[:MAX_TEXT] if problem else None
    review.proposal_figures = record.figures()
    review.proposed_by_id, review.proposed_at, review.updated_at = actor.account_id, now, now
    review.status = ReviewStatus.PROPOSED
    session.flush()
    audit.record(session, actor, "review.propose", review, before, audit.snapshot(review, REVIEW_FIELDS),
                 organisation_id=review.cell_id)
    return review


def confirm(session: Session, actor: Actor, member: Member, year: int, record: YearRecord, *, grade: str | None,
            note: str | None, justification: str | None, committee_id: int | None, now: dt.datetime) -> YearReview:
    """Step 3: the competent committee's decision (it may differ from the proposal)."""
    review = get_review(session, member.id, year)
    if review is None or review.status != ReviewStatus.PROPOSED:
        raise ValidationError("Chi bộ chưa đề xuất xếp loại cho đảng viên này." if review is None
                              or review.status != ReviewStatus.CONFIRMED else "Cấp ủy đã quyết định xếp loại.")
    chosen = _grade(grade or (review.proposed_grade.value if review.proposed_grade else None), "mức xếp loại",
                    "confirmed_grade")
    problem = inconsistency(chosen, record)
    explained = clean_text(justification)
    if problem and not explained:
        raise ValidationError(problem, field="confirmation_justification")
    if chosen != review.proposed_grade and not clean_text(note):
        raise ValidationError("Quyết định khác với đề xuất của chi bộ: hãy ghi rõ lý do.", field="confirmation_note")
    before = audit.snapshot(review, REVIEW_FIELDS)
    review.confirmed_grade, review.confirmation_note = chosen, clean_text(note)[:MAX_TEXT] or None
    review.confirmation_justification = explained[:MAX_TEXT] if problem else None
    review.confirmed_by_id, review.confirmed_at, review.confirming_org_id = actor.account_id, now, committee_id
    review.status, review.updated_at = ReviewStatus.CONFIRMED, now
    session.flush()
    audit.record(session, actor, "review.confirm", review, before, audit.snapshot(review, REVIEW_FIELDS),
                 organisation_id=review.cell_id)
    return review


def review_file(session: Session, review: YearReview, root: Path) -> tuple[str, str, bytes]:
    if review.file_stored is None or review.file_name is None or review.file_kind is None:
        raise NotFound("Bản tự kiểm điểm này không có tệp đính kèm.")
    return review.file_name, documents.KINDS[review.file_kind][0], documents.load(root, "reviews", review.file_stored)


def comment_file(session: Session, comment: HostComment, root: Path) -> tuple[str, str, bytes]:
    if comment.file_stored is None or comment.file_name is None or comment.file_kind is None:
        raise NotFound("Nhận xét này không có tệp đính kèm.")
    return comment.file_name, documents.KINDS[comment.file_kind][0], documents.load(root, "reviews",
                                                                                   comment.file_stored)


def reviews_of(session: Session, member_ids: list[int], year: int) -> dict[int, YearReview]:
    if not member_ids:
        return {}
    return {r.member_id: r for r in session.scalars(select(YearReview).where(YearReview.member_id.in_(member_ids),
                                                                              YearReview.year == year))}
