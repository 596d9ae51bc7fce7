"""Minutes: the editor with autosave, confirmation and adoption, adopted versions and their
DOCX/PDF exports, and a cell's list of adopted minutes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meetings.foundation.errors import Conflict, DomainError, Forbidden
from meetings.organisation import scoping
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting, MeetingStatus
from meetings.proceedings import attendance as att
from meetings.proceedings import minutes as mn
from meetings.proceedings import votes
from meetings.proceedings.minutes_export import body, header, to_docx, to_pdf

from ..web import Ctx, view
from .access import meeting_for


def _can_edit(ctx: Ctx, meeting: Meeting, minutes: mn.Minutes | None) -> bool:
    if meeting.status not in (MeetingStatus.OPEN, MeetingStatus.CLOSED):
        return False
    if ctx.scope.can_manage(meeting.cell_id):
        return True
    return bool(minutes and ctx.scope.member_id and minutes.taker_member_id == ctx.scope.member_id)


def _editor(ctx: Ctx, meeting: Meeting, *, status_code: int = 200, error: str | None = None) -> Response:
    existing = ctx.db.scalar(select(mn.Minutes).where(mn.Minutes.meeting_id == meeting.id))
    can_edit = _can_edit(ctx, meeting, existing)
    versions = mn.versions(ctx.db, meeting.id)
    drift = mn.figures_drift(ctx.db, meeting, versions[-1], ctx.now) if versions else []
    context: dict[str, Any] = {"meeting": meeting, "cell": ctx.db.get(Organisation, meeting.cell_id),
                               "versions": versions, "error": error, "can_edit": can_edit, "drift": drift}
    if not can_edit:
        return ctx.render("minutes_list.html", status_code=status_code, **context)
    draft = mn.draft(ctx.db, meeting)
    records = att.current_roster(ctx.db, meeting, ctx.now)
    data = {k: getattr(draft, k) for k in mn.DRAFT_FIELDS}
    return ctx.render(
        "minutes_edit.html", status_code=status_code, draft=draft, data=data, counts=att.counts(records),
        records=records, motions=votes.motions_of(ctx.db, meeting.id), chair=ctx.scope.chairs(meeting.cell_id),
        is_taker=ctx.scope.member_id is not None and draft.taker_member_id == ctx.scope.member_id,
        is_chair=ctx.scope.member_id is not None and draft.chair_member_id == ctx.scope.member_id
        and ctx.scope.chairs(meeting.cell_id),
        taker_confirmed=draft.taker_confirmed_revision == draft.revision and draft.taker_confirmed_at is not None,
        **context,
    )


@view()
def minutes_page(ctx: Ctx) -> Response:
    return _editor(ctx, meeting_for(ctx))


@view()
def minutes_save(ctx: Ctx) -> Response:
    """Autosave (JSON): {"revision": n, "data": {...}} → {"revision": n + 1, "saved_at": …}."""
    meeting = meeting_for(ctx)
    existing = ctx.db.scalar(select(mn.Minutes).where(mn.Minutes.meeting_id == meeting.id))
    if not _can_edit(ctx, meeting, existing):
        return JSONResponse({"error": "forbidden", "message": "Bạn không được sửa biên bản này."}, status_code=403)
    payload = ctx.json
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict) \
            or not isinstance(payload.get("revision"), int):
        return JSONResponse({"error": "bad_request", "message": "Dữ liệu biên bản không hợp lệ."}, status_code=400)
    try:
        draft = mn.save_draft(ctx.db, ctx.actor, meeting, payload["data"], base_revision=payload["revision"],
                              now=ctx.now)
    except Conflict as exc:
        return JSONResponse({"error": "conflict", "message": exc.message}, status_code=409)
    except DomainError as exc:
        return JSONResponse({"error": "invalid", "message": exc.message}, status_code=400)
    return JSONResponse({"revision": draft.revision, "saved_at": draft.updated_at.isoformat()})


@view()
def minutes_confirm(ctx: Ctx) -> Response:
    meeting = meeting_for(ctx)
    existing = ctx.db.scalar(select(mn.Minutes).where(mn.Minutes.meeting_id == meeting.id))
    if not _can_edit(ctx, meeting, existing):
        raise Forbidden("Chỉ thư ký cuộc họp hoặc bí thư chi bộ xác nhận biên bản.")
    try:
        mn.confirm_as_taker(ctx.db, ctx.actor, meeting, ctx.now)
    except DomainError as exc:
        ctx.db.rollback()
        return _editor(ctx, meeting, status_code=400, error=exc.message)
    return ctx.redirect(f"/meetings/{meeting.id}/minutes", "Thư ký đã xác nhận biên bản.")


@view()
def minutes_adopt(ctx: Ctx) -> Response:
    meeting = meeting_for(ctx)
    if not ctx.scope.chairs(meeting.cell_id):
        raise Forbidden("Chỉ người chủ trì (bí thư chi bộ) thông qua biên bản.")
    try:
        version = mn.adopt(ctx.db, ctx.actor, meeting, ctx.now, reason=ctx.field("reason") or None)
    except DomainError as exc:
        ctx.db.rollback()
        return _editor(ctx, meeting, status_code=400, error=exc.message)
    return ctx.redirect(f"/meetings/{meeting.id}/minutes/v/{version.version}",
                        f"Biên bản đã được thông qua (phiên bản {version.version}).")


def _version(ctx: Ctx) -> tuple[Meeting, mn.MinutesVersion]:
    meeting = meeting_for(ctx)
    return meeting, mn.get_version(ctx.db, meeting.id, ctx.path_int("version"))


@view()
def version_page(ctx: Ctx) -> Response:
    meeting, version = _version(ctx)
    return ctx.render("minutes_version.html", meeting=meeting, cell=ctx.db.get(Organisation, meeting.cell_id),
                      version=version, head=header(version.content), paragraphs=body(version.content),
                      problems=mn.check(ctx.db, version), latest=mn.latest_version(ctx.db, meeting.id))


def _download(data: bytes, media_type: str, name: str) -> Response:
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@view()
def version_docx(ctx: Ctx) -> Response:
    meeting, version = _version(ctx)
    return _download(to_docx(version),
                     "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                     f"bien-ban-{meeting.local_date.isoformat()}-v{version.version}.docx")


@view()
def version_pdf(ctx: Ctx) -> Response:
    meeting, version = _version(ctx)
    return _download(to_pdf(version), "application/pdf",
                     f"bien-ban-{meeting.local_date.isoformat()}-v{version.version}.pdf")


@view()
def cell_minutes(ctx: Ctx) -> Response:
    """Every adopted minutes of the cell, latest version each (what members may read)."""
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    rows = ctx.db.execute(
        select(Meeting, mn.MinutesVersion).join(mn.MinutesVersion, mn.MinutesVersion.meeting_id == Meeting.id)
        .where(Meeting.cell_id == cell.id).order_by(Meeting.starts_at.desc(), mn.MinutesVersion.version.desc())
    ).all()
    latest: dict[int, tuple[Meeting, mn.MinutesVersion]] = {}
    for meeting, version in rows:
        latest.setdefault(meeting.id, (meeting, version))
    return ctx.render("cell_minutes.html", cell=cell, rows=list(latest.values()))


routes = [
    Route("/meetings/{meeting_id:int}/minutes", minutes_page, name="minutes"),
    Route("/meetings/{meeting_id:int}/minutes/draft", minutes_save, methods=["POST"], name="minutes_save"),
    Route("/meetings/{meeting_id:int}/minutes/confirm", minutes_confirm, methods=["POST"], name="minutes_confirm"),
    Route("/meetings/{meeting_id:int}/minutes/adopt", minutes_adopt, methods=["POST"], name="minutes_adopt"),
    Route("/meetings/{meeting_id:int}/minutes/v/{version:int}", version_page, name="minutes_version"),
    Route("/meetings/{meeting_id:int}/minutes/v/{version:int}.docx", version_docx, name="minutes_docx"),
    Route("/meetings/{meeting_id:int}/minutes/v/{version:int}.pdf", version_pdf, name="minutes_pdf"),
    Route("/cells/{cell_id:int}/minutes", cell_minutes, name="cell_minutes"),
]
