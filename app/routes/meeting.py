"""One meeting: its page, edits by the secretary, agenda, documents, remote list, absences, ICS."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from meetings.foundation import audit
from meetings.foundation.errors import DomainError, Forbidden, NotFound, ValidationError
from meetings.foundation.text import optional_text
from meetings.organisation import eligibility
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning import absences, agenda, calendars, dates, documents, pilot, schedules
from meetings.planning.access import access_meeting, audits_meeting
from meetings.planning.agenda import ItemInput
from meetings.planning.meetings import Meeting, MeetingStatus, RemoteInvite, remote_invites
from meetings.planning.schedules import DetailsInput
from meetings.proceedings.room_access import RoomAccess, RoomRefusal, RoomRole, room_access

from ..web import Ctx, parse_id, status_for, view


def _cell(ctx: Ctx, meeting: Meeting) -> Organisation:
    cell = ctx.db.get(Organisation, meeting.cell_id)
    assert cell is not None
    return cell


def _room(ctx: Ctx, meeting: Meeting) -> RoomAccess:
    """Whether and how the reader may join the meeting's room (``proceedings.room_access``)."""
    access = room_access(ctx.db, ctx.scope, meeting.id)
    if isinstance(access, RoomRefusal):
        raise NotFound()
    return access


def _remote_only(ctx: Ctx, meeting: Meeting) -> bool:
    """The reader takes part from afar: in-person-only documents are withheld."""
    return _room(ctx, meeting).role is RoomRole.MEMBER


def meeting_context(ctx: Ctx, meeting: Meeting, **extra: Any) -> dict[str, Any]:
    cell = _cell(ctx, meeting)
    manage = ctx.scope.can_manage(cell.id)
    on = meeting.local_date
    roster = eligibility.electorate(ctx.db, cell.id, on)
    invited = remote_invites(ctx.db, meeting.id)
    remote_people = [e for e in roster.expected if e.away or e.member_id in invited]
    room = _room(ctx, meeting)
    decision = room.decision
    remote_only = room.role is RoomRole.MEMBER
    items = agenda.items_of(ctx.db, meeting.id)
    hidden_items = {i.id for i in items if i.in_person_only} if remote_only else set()
    docs = documents.documents_of(ctx.db, meeting.id)
    oversees = audits_meeting(ctx.db, ctx.scope, meeting)
    requests = absences.requests_for(ctx.db, meeting.id) if oversees else []
    names = {e.member_id: e.full_name for e in roster}
    if requests:
        missing = [r.member_id for r in requests if r.member_id not in names]
        if missing:
            names.update({m.id: m.full_name for m in ctx.db.scalars(select(Member).where(Member.id.in_(missing)))})
    min_regular, min_combined = schedules.minimums(ctx.db, cell.id)
    return {
        "meeting": meeting, "cell": cell, "items": items, "now": ctx.now,
        "docs": [d for d in docs if d.agenda_item_id not in hidden_items],
        "withheld": len([d for d in docs if d.agenda_item_id in hidden_items]),
        "late_docs": [w for d in docs if (w := documents.late_warning(d, meeting))],
        "readers": documents.readers(ctx.db, meeting.id) if oversees else {},
        "item_titles": {i.id: i.title for i in items},
        "approval": pilot.current_approval(ctx.db, cell.id, on),
        "remote_people": remote_people, "invited": invited,
        "candidates": [e for e in roster.expected if not e.away and e.member_id not in invited],
        "decision": decision, "remote_only": remote_only,
        "own_request": absences.request_of(ctx.db, meeting.id, ctx.scope.member_id),
        "own_entry": roster.get(ctx.scope.member_id) if ctx.scope.member_id else None,
        "requests": requests, "names": names,
        "duration_warning": schedules.duration_warning(meeting, meeting.duration_minutes, min_regular, min_combined),
        "can_manage": manage, "can_audit": oversees,
        # A meeting not held yet can be moved or cancelled, also once its planned time passed.
        "movable": meeting.status == MeetingStatus.SCHEDULED,
        **extra,
    }


@view()
def meeting_page(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"))
    return ctx.render("meeting.html", **meeting_context(ctx, meeting))


def _meeting_error(ctx: Ctx, meeting: Meeting, exc: DomainError, **extra: Any) -> Response:
    return ctx.render("meeting.html", status_code=status_for(exc), error=exc.message,
                      **meeting_context(ctx, meeting, **extra))


@view()
def meeting_edit(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    cell = _cell(ctx, meeting)
    context: dict[str, Any] = {"meeting": meeting, "cell": cell,
                               "approval": pilot.current_approval(ctx.db, cell.id, meeting.local_date)}
    if ctx.request.method == "GET":
        values = {"title": meeting.title, "topic": meeting.topic or "", "place": meeting.place or "",
                  "expected_minutes": meeting.expected_minutes, "combined_thematic": meeting.combined_thematic,
                  "remote_open": meeting.remote_open, "lobby": meeting.lobby}
        return ctx.render("meeting_edit.html", values=values, **context)
    posted = {n: ctx.field(n) for n in ("title", "topic", "place", "expected_minutes")}
    flags = {n: ctx.field(n) == "on" for n in ("combined_thematic", "remote_open", "lobby")}
    try:
        details = DetailsInput(title=posted["title"], topic=posted["topic"], place=posted["place"],
                               expected_minutes=posted["expected_minutes"], **flags)
        schedules.update_details(ctx.db, ctx.actor, meeting, details, now=ctx.now)
    except DomainError as exc:
        return ctx.render("meeting_edit.html", status_code=400, values={**posted, **flags}, error=exc.message,
                          **context)
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã lưu cuộc họp.")


@view()
def meeting_move(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    form = {n: ctx.field(n) for n in ("date", "time", "place", "reason")}
    try:
        starts = schedules.parse_local_datetime(form["date"], form["time"], "Thời gian mới")
        dates.move_meeting(ctx.db, ctx.actor, meeting, starts, form["reason"], now=ctx.now, place=form["place"])
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc, move_form=form)
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã dời lịch họp; đảng viên sẽ được thông báo kèm lý do.")


@view()
def meeting_cancel(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    try:
        schedules.cancel_meeting(ctx.db, ctx.actor, meeting, ctx.field("reason"), now=ctx.now)
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc, cancel_reason=ctx.field("reason"))
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã hủy cuộc họp; đảng viên sẽ được thông báo kèm lý do.")


@view()
def meeting_actual(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    form = {n: ctx.field(n) for n in ("date", "start", "end", "reason")}
    try:
        start = schedules.parse_local_datetime(form["date"], form["start"], "Bắt đầu")
        end = schedules.parse_local_datetime(form["date"], form["end"], "Kết thúc")
        dates.record_actual_times(ctx.db, ctx.actor, meeting, start, end, now=ctx.now, reason=form["reason"] or None)
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc, actual_form=form)
    warning = schedules.meeting_duration_warning(ctx.db, meeting)
    if warning:
        return ctx.redirect(f"/meetings/{meeting.id}", f"Đã ghi thời gian thực tế. Lưu ý: {warning}", "warning")
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã ghi thời gian thực tế của cuộc họp.")


@view()
def agenda_page(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    context: dict[str, Any] = {"meeting": meeting, "cell": _cell(ctx, meeting)}
    if ctx.request.method == "GET":
        return ctx.render("agenda_form.html", items=agenda.items_of(ctx.db, meeting.id), **context)
    assert ctx.form is not None
    titles = ctx.form.getlist("title")
    ids = ctx.form.getlist("item_id")
    details = ctx.form.getlist("detail")
    in_person = set(ctx.form.getlist("in_person"))
    removed = set(ctx.form.getlist("remove"))
    rows: list[ItemInput] = []
    for n, title in enumerate(titles):
        raw_id = str(ids[n]) if n < len(ids) else ""
        key = raw_id or f"new{n}"
        if key in removed:
            continue
        rows.append(ItemInput(title=str(title), detail=str(details[n]) if n < len(details) else None,
                              in_person_only=key in in_person, item_id=parse_id(raw_id)))
    try:
        if meeting.status in (MeetingStatus.CLOSED, MeetingStatus.CANCELLED):
            raise ValidationError(f"Cuộc họp “{meeting.status.label}”, không sửa chương trình được nữa.")
        agenda.save_items(ctx.db, ctx.actor, meeting, rows)
        meeting.touched = True
    except DomainError as exc:
        return ctx.render("agenda_form.html", status_code=400, error=exc.message,
                          items=agenda.items_of(ctx.db, meeting.id), **context)
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã lưu chương trình cuộc họp.")


def _documents_root(ctx: Ctx) -> Path:
    root: Path = ctx.request.app.state.settings.data_dir
    return root


@view(upload=True)
def document_upload(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    upload = ctx.file("file")
    settings = ctx.request.app.state.settings
    try:
        if upload is None or not upload.filename:
            raise ValidationError("Hãy chọn tệp tài liệu để tải lên.")
        data = upload.file.read(settings.UPLOAD_MAX_BYTES + 1)
        doc = documents.add_document(ctx.db, ctx.actor, meeting, filename=upload.filename, data=data,
                                     root=_documents_root(ctx), max_bytes=settings.UPLOAD_MAX_BYTES, now=ctx.now,
                                     agenda_item_id=ctx.field_id("agenda_item_id"))
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc)
    warning = documents.late_warning(doc, meeting)
    if warning:
        return ctx.redirect(f"/meetings/{meeting.id}", f"Đã đăng tài liệu. Lưu ý: {warning}", "warning")
    return ctx.redirect(f"/meetings/{meeting.id}", f"Đã đăng tài liệu “{doc.filename}”.")


@view()
def document_open(ctx: Ctx) -> Response:
    doc = ctx.db.get(documents.MeetingDocument, ctx.path_int("document_id"))
    if doc is None:
        raise NotFound()
    meeting = access_meeting(ctx.db, ctx.scope, doc.meeting_id)
    doc, data = documents.open_document(
        ctx.db, doc.id, meeting=meeting, account_id=ctx.account.id, member_id=ctx.scope.member_id,
        remote_only=_remote_only(ctx, meeting), root=_documents_root(ctx), now=ctx.now,
    )

    disposition = "inline" if doc.kind in ("pdf", "png", "jpeg") else "attachment"
    return Response(data, media_type=doc.content_type, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(doc.filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
    })


@view()
def document_remove(ctx: Ctx) -> Response:
    doc = ctx.db.get(documents.MeetingDocument, ctx.path_int("document_id"))
    if doc is None:
        raise NotFound()
    meeting = access_meeting(ctx.db, ctx.scope, doc.meeting_id, manage=True)
    documents.remove_document(ctx.db, ctx.actor, doc, meeting, ctx.now)
    return ctx.redirect(f"/meetings/{meeting.id}", f"Đã gỡ tài liệu “{doc.filename}”.")


@view()
def remote_list(ctx: Ctx) -> Response:
    """The secretary adds a member to (or removes one from) the meeting's remote list."""
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"), manage=True)
    member_id = ctx.field_id("member_id")
    try:
        if member_id is None:
            raise ValidationError("Hãy chọn đảng viên.")
        entry = eligibility.electorate(ctx.db, meeting.cell_id, meeting.local_date).get(member_id)
        if entry is None or not entry.expected:
            raise ValidationError("Đảng viên này không thuộc danh sách dự họp của chi bộ.")
        if meeting.status in (MeetingStatus.CLOSED, MeetingStatus.CANCELLED):
            raise ValidationError(f"Cuộc họp “{meeting.status.label}”.")
        existing = ctx.db.scalar(select(RemoteInvite).where(RemoteInvite.meeting_id == meeting.id,
                                                            RemoteInvite.member_id == entry.member_id))
        if ctx.field("action") == "remove":
            if existing is not None:
                audit.record(ctx.db, ctx.actor, "remote.remove", existing,
                             {"member_id": entry.member_id, "reason": existing.reason}, None,
                             organisation_id=meeting.cell_id)
                ctx.db.delete(existing)
            message = f"Đã bỏ {entry.full_name} khỏi danh sách tham gia trực tuyến."
        else:
            if existing is None:
                invite = RemoteInvite(meeting_id=meeting.id, member_id=entry.member_id,
                                      reason=optional_text(ctx.field("reason")))
                ctx.db.add(invite)
                ctx.db.flush()
                audit.record(ctx.db, ctx.actor, "remote.add", invite, None,
                             {"member_id": entry.member_id, "reason": invite.reason}, organisation_id=meeting.cell_id)
            message = f"Đã cho phép {entry.full_name} tham gia trực tuyến."
        meeting.touched = True
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc)
    return ctx.redirect(f"/meetings/{meeting.id}", message)


@view()
def absence_file(ctx: Ctx) -> Response:
    meeting_id = ctx.path_int("meeting_id")
    try:
        meeting = access_meeting(ctx.db, ctx.scope, meeting_id)
    except NotFound:
        raise NotFound("Không tìm thấy cuộc họp này trong chi bộ của bạn. Chỉ xin vắng được cuộc họp của "
                       "chi bộ mình sinh hoạt.") from None
    if ctx.scope.member_id is None:
        raise Forbidden("Tài khoản của bạn không gắn với đảng viên nào nên không thể xin vắng.")
    settings = ctx.request.app.state.settings
    try:
        absences.file_request(ctx.db, ctx.actor, meeting, ctx.scope.member_id, ctx.field("reason"), now=ctx.now,
                              late_hours=settings.ABSENCE_LATE_HOURS)
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc, absence_reason=ctx.field("reason"))
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã gửi đơn xin vắng; bí thư chi bộ sẽ xem xét.")


@view()
def absence_decide(ctx: Ctx) -> Response:
    request = absences.get_request(ctx.db, ctx.path_int("absence_id"))
    meeting = access_meeting(ctx.db, ctx.scope, request.meeting_id, manage=True)
    decision = ctx.field("decision")
    try:
        if decision not in ("approve", "reject"):
            raise ValidationError("Hãy chọn chấp thuận hoặc không chấp thuận.")
        absences.decide(ctx.db, ctx.actor, request, meeting, approve=decision == "approve", note=ctx.field("note"),
                        now=ctx.now)
    except DomainError as exc:
        return _meeting_error(ctx, meeting, exc)
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã ghi quyết định về đơn xin vắng.")


@view()
def meeting_ics(ctx: Ctx) -> Response:
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"))
    body = calendars.meeting_ics(meeting, _cell(ctx, meeting), str(ctx.request.app.state.settings.PUBLIC_URL), ctx.now)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="cuoc-hop-{meeting.id}.ics"'})


routes = [
    Route("/meetings/{meeting_id:int}", meeting_page, name="meeting"),
    Route("/meetings/{meeting_id:int}/edit", meeting_edit, methods=["GET", "POST"], name="meeting_edit"),
    Route("/meetings/{meeting_id:int}/move", meeting_move, methods=["POST"], name="meeting_move"),
    Route("/meetings/{meeting_id:int}/cancel", meeting_cancel, methods=["POST"], name="meeting_cancel"),
    Route("/meetings/{meeting_id:int}/actual", meeting_actual, methods=["POST"], name="meeting_actual"),
    Route("/meetings/{meeting_id:int}/agenda", agenda_page, methods=["GET", "POST"], name="agenda"),
    Route("/meetings/{meeting_id:int}/documents", document_upload, methods=["POST"], name="document_upload"),
    Route("/meetings/{meeting_id:int}/remote", remote_list, methods=["POST"], name="remote_list"),
    Route("/meetings/{meeting_id:int}/absence", absence_file, methods=["POST"], name="absence_file"),
    Route("/meetings/{meeting_id:int}/calendar.ics", meeting_ics, name="meeting_ics"),
    Route("/documents/{document_id:int}", document_open, name="document"),
    Route("/documents/{document_id:int}/remove", document_remove, methods=["POST"], name="document_remove"),
    Route("/absences/{absence_id:int}/decide", absence_decide, methods=["POST"], name="absence_decide"),
]
