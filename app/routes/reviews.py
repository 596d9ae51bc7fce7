"""The year-end review of one member: self-assessment, host comments, proposal, decision."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from sqlalchemy import or_, select
from starlette.responses import Response
from starlette.routing import Route

from meetings.evaluation import records, reviews
from meetings.evaluation.reviews import HEADINGS, REQUIRED, Grade, HostComment, ReviewStatus
from meetings.foundation.errors import DomainError, Forbidden, NotFound
from meetings.organisation import scoping
from meetings.organisation.members import Member, MemberPeriod, PeriodKind
from meetings.organisation.organisations import Organisation

from ..web import Ctx, view
from .access import member_record_access
from .records import record_context


def _year(ctx: Ctx) -> int:
    year = ctx.path_int("year")
    if not 2000 <= year <= ctx.today.year:
        raise NotFound("Không có kỳ kiểm điểm năm này.")
    return year


def _host_cells(ctx: Ctx, member: Member, year: int) -> set[int]:
    """Cells on the platform the member was attached to during the year."""
    return set(ctx.db.scalars(select(MemberPeriod.host_cell_id).where(
        MemberPeriod.member_id == member.id, MemberPeriod.kind == PeriodKind.TRANSFER_OUT,
        MemberPeriod.host_cell_id.is_not(None), MemberPeriod.start_on <= dt.date(year, 12, 31),
        or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= dt.date(year, 1, 1)))))


def _roles(ctx: Ctx, member: Member, year: int) -> dict[str, Any]:
    """What the viewer may do on this review."""
    home = member.home_cell_id
    cell = ctx.db.get(Organisation, home) if home else None
    hosts = {c for c in _host_cells(ctx, member, year) if ctx.scope.can_manage(c)}
    return {
        "is_self": ctx.scope.member_id == member.id,
        "manages_home": home is not None and ctx.scope.can_manage(home),
        "chairs": home is not None and ctx.scope.chairs(home),
        "host_cells": hosts,
        "can_confirm": cell is not None and scoping.can_approve_for(ctx.db, ctx.scope, cell),
    }


def _render(ctx: Ctx, member: Member, year: int, *, status_code: int = 200, error: str | None = None,
            values: dict[str, str] | None = None, section: str | None = None) -> Response:
    roles = _roles(ctx, member, year)
    context = record_context(ctx, member, year)
    record = context["record"]
    home = ctx.db.get(Organisation, member.home_cell_id) if member.home_cell_id else None
    review = reviews.get_review(ctx.db, member.id, year)
    return ctx.render(
        "review.html", status_code=status_code, error=error, error_section=section, values=values or {},
        member=member, year=year, home_cell=home, review=review,
        eligibility=reviews.eligibility(ctx.db, member, year),
        comments=reviews.host_comments(ctx.db, member.id, year), headings=HEADINGS, required=REQUIRED,
        grades=list(Grade), needs_justification={g: reviews.inconsistency(g, record) for g in Grade},
        needing=[g for g in Grade if reviews.inconsistency(g, record)], counters=reviews.counters(record),
        ReviewStatus=ReviewStatus, **roles, **context,
    )


@view()
def review_page(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    return _render(ctx, member, _year(ctx))


def _upload(ctx: Ctx) -> tuple[str, bytes] | None:
    upload = ctx.file("file")
    if upload is None or not upload.filename:
        return None
    limit = int(ctx.request.app.state.settings.UPLOAD_MAX_BYTES)
    return upload.filename, upload.file.read(limit + 1)


def _form_values(ctx: Ctx) -> dict[str, str]:
    return {name: ctx.field(name) for name in ctx.form} if ctx.form is not None else {}


@view(upload=True)
def self_assessment(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    year = _year(ctx)
    roles = _roles(ctx, member, year)
    if not (roles["is_self"] or roles["manages_home"]):
        raise Forbidden("Chỉ đảng viên đó (hoặc bí thư chi bộ thay mặt) nộp bản tự kiểm điểm.")
    settings = ctx.request.app.state.settings
    try:
        reviews.submit_self_assessment(
            ctx.db, ctx.actor, member, year, form={key: ctx.field(key) for key, _, _ in HEADINGS},
            self_grade=ctx.field("self_grade") or None, file=_upload(ctx), root=settings.data_dir,
            max_bytes=int(settings.UPLOAD_MAX_BYTES), today=ctx.today, now=ctx.now)
    except DomainError as exc:
        ctx.db.rollback()
        return _render(ctx, member, year, status_code=400, error=exc.message, values=_form_values(ctx),
                       section="self")
    return ctx.redirect(f"/members/{member.id}/review/{year}", "Đã nộp bản tự kiểm điểm.")


@view(upload=True)
def host_comment(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    year = _year(ctx)
    roles = _roles(ctx, member, year)
    if not (roles["manages_home"] or roles["host_cells"]):
        raise Forbidden("Chỉ bí thư chi bộ nơi sinh hoạt chính thức hoặc nơi sinh hoạt tạm thời ghi nhận xét.")
    settings = ctx.request.app.state.settings
    host_cell = None if roles["manages_home"] else min(roles["host_cells"])
    try:
        reviews.add_host_comment(ctx.db, ctx.actor, member, year, host_name=ctx.field("host_name"),
                                 text=ctx.field("text"), file=_upload(ctx), host_cell_id=host_cell,
                                 root=settings.data_dir, max_bytes=int(settings.UPLOAD_MAX_BYTES), today=ctx.today,
                                 now=ctx.now)
    except DomainError as exc:
        ctx.db.rollback()
        return _render(ctx, member, year, status_code=400, error=exc.message, values=_form_values(ctx),
                       section="host")
    return ctx.redirect(f"/members/{member.id}/review/{year}#nhan-xet", "Đã lưu nhận xét.")


@view()
def proposal(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    year = _year(ctx)
    if not _roles(ctx, member, year)["chairs"]:
        raise Forbidden("Chỉ bí thư, phó bí thư chi bộ ghi đề xuất xếp loại của chi bộ.")
    record = records.record_of(ctx.db, member.id, year)
    try:
        reviews.propose(ctx.db, ctx.actor, member, year, record, grade=ctx.field("proposed_grade") or None,
                        reason=ctx.field("proposal_reason"), justification=ctx.field("proposal_justification"),
                        now=ctx.now)
    except DomainError as exc:
        ctx.db.rollback()
        return _render(ctx, member, year, status_code=400, error=exc.message, values=_form_values(ctx),
                       section="proposal")
    return ctx.redirect(f"/members/{member.id}/review/{year}#de-xuat", "Đã ghi đề xuất xếp loại của chi bộ.")


@view()
def confirmation(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    year = _year(ctx)
    if not _roles(ctx, member, year)["can_confirm"]:
        raise Forbidden("Chỉ cấp ủy cấp trên có thẩm quyền (quản trị cấp ủy) quyết định xếp loại; bí thư chi bộ "
                        "không tự quyết định.")
    cell = ctx.db.get(Organisation, member.home_cell_id) if member.home_cell_id else None
    record = records.record_of(ctx.db, member.id, year)
    try:
        reviews.confirm(ctx.db, ctx.actor, member, year, record, grade=ctx.field("confirmed_grade") or None,
                        note=ctx.field("confirmation_note"), justification=ctx.field("confirmation_justification"),
                        committee_id=cell.parent_id if cell else None, now=ctx.now)
    except DomainError as exc:
        ctx.db.rollback()
        return _render(ctx, member, year, status_code=400, error=exc.message, values=_form_values(ctx),
                       section="confirmation")
    return ctx.redirect(f"/members/{member.id}/review/{year}#quyet-dinh", "Đã ghi quyết định xếp loại.")


def _download(name: str, content_type: str, data: bytes) -> Response:
    return Response(data, media_type=content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


@view()
def self_assessment_file(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    review = reviews.get_review(ctx.db, member.id, _year(ctx))
    if review is None:
        raise NotFound("Chưa có bản tự kiểm điểm.")
    return _download(*reviews.review_file(ctx.db, review, ctx.request.app.state.settings.data_dir))


@view()
def host_comment_file(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    comment = ctx.db.get(HostComment, ctx.path_int("comment_id"))
    if comment is None or comment.member_id != member.id or comment.year != _year(ctx):
        raise NotFound()
    return _download(*reviews.comment_file(ctx.db, comment, ctx.request.app.state.settings.data_dir))


routes = [
    Route("/members/{member_id:int}/review/{year:int}", review_page, name="review"),
    Route("/members/{member_id:int}/review/{year:int}/self", self_assessment, methods=["POST"], name="review_self"),
    Route("/members/{member_id:int}/review/{year:int}/file", self_assessment_file, name="review_file"),
    Route("/members/{member_id:int}/review/{year:int}/host-comment", host_comment, methods=["POST"],
          name="review_host_comment"),
    Route("/members/{member_id:int}/review/{year:int}/comments/{comment_id:int}/file", host_comment_file,
          name="review_comment_file"),
    Route("/members/{member_id:int}/review/{year:int}/proposal", proposal, methods=["POST"], name="review_proposal"),
    Route("/members/{member_id:int}/review/{year:int}/confirmation", confirmation, methods=["POST"],
          name="review_confirmation"),
]
