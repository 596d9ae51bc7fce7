"""The meeting's roster: marking attendance and dues, live counts, CSV export, and a
member's own attendance history."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meetings.foundation.errors import DomainError, Forbidden
from meetings.organisation import scoping
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting, MeetingStatus
from meetings.proceedings import attendance as att
from meetings.proceedings.attendance import AttendanceStatus, DuesStatus, Mark, ReasonCategory

from .. import exports
from ..web import Ctx, view
from .access import meeting_for

#: The choices of the marking form: (value, label) → (status, mode, excused).
MARKS = {
    "in_person": ("Có mặt trực tiếp", AttendanceStatus.PRESENT, "in_person", None),
    "online": ("Có mặt trực tuyến", AttendanceStatus.PRESENT, "online", None),
    "excused": ("Vắng có lý do", AttendanceStatus.ABSENT, None, True),
    "unexcused": ("Vắng không có lý do", AttendanceStatus.ABSENT, None, False),
    "not_expected": ("Không phải dự (miễn, chuyển SHT)", AttendanceStatus.NOT_EXPECTED, None, None),
    "unmarked": ("Chưa điểm danh", AttendanceStatus.UNMARKED, None, None),
}


def allowed_marks(record: att.AttendanceRecord) -> list[str]:
    """What the form offers for one member: an exempt member may still attend (and then
    counts in D); transferred-out and suspended members are only listed."""
    if record.expected:
        return ["in_person", "online", "excused", "unexcused", "unmarked"]
    if record.standing.value == "exempt":
        return ["not_expected", "in_person", "online"]
    return ["not_expected"]


def mark_key(record: att.AttendanceRecord) -> str:
    if record.status == AttendanceStatus.PRESENT:
        return "online" if record.mode and record.mode.value == "online" else "in_person"
    if record.status == AttendanceStatus.ABSENT:
        return "excused" if record.excused else "unexcused"
    return record.status.value


@view()
def roster_page(ctx: Ctx) -> Response:
    return _render_roster(ctx, meeting_for(ctx, audit=True))


def _render_roster(ctx: Ctx, meeting: Meeting, *, status_code: int = 200, error: str | None = None) -> Response:
    records = att.current_roster(ctx.db, meeting, ctx.now)
    dues = att.dues_for_month(ctx.db, meeting.cell_id, meeting.local_date)
    return ctx.render(
        "attendance.html",
        status_code=status_code,
        error=error,
        meeting=meeting,
        cell=ctx.db.get(Organisation, meeting.cell_id),
        records=records,
        counts=att.counts(records),
        dues=dues,
        can_manage=ctx.scope.can_manage(meeting.cell_id) and meeting.status != MeetingStatus.CANCELLED,
        marks=MARKS,
        mark_key=mark_key,
        allowed_marks=allowed_marks,
        reasons=list(ReasonCategory),
        dues_statuses=list(DuesStatus),
        amendments=att.amendment_lines(ctx.db, meeting.id),
        closed=meeting.status == MeetingStatus.CLOSED,
        decided=att.decided,
        suggested=[r for r in records if r.source == "online" and not r.confirmed
                   and r.status == AttendanceStatus.PRESENT],
    )


@view()
def mark_member(ctx: Ctx) -> Response:
    meeting = meeting_for(ctx, manage=True)
    member_id = ctx.path_int("member_id")
    choice = ctx.field("mark")
    if choice not in MARKS:
        return _render_roster(ctx, meeting, status_code=400, error="Hãy chọn cách điểm danh.")
    _, status, mode, excused = MARKS[choice]
    try:
        att.mark(ctx.db, ctx.actor, meeting, member_id,
                 Mark(status=status, mode=mode, excused=excused, reason_category=ctx.field("reason_category") or None,
                      reason_text=ctx.field("reason_text") or None),
                 now=ctx.now, amendment_reason=ctx.field("amendment_reason") or None)
        dues = ctx.field("dues")
        if dues:
            att.record_dues(ctx.db, ctx.actor, meeting, member_id, dues, ctx.now)
    except DomainError as exc:
        ctx.db.rollback()  # nothing of this request is kept
        return _render_roster(ctx, meeting, status_code=400, error=exc.message)
    return ctx.redirect(f"/meetings/{meeting.id}/attendance#m{member_id}", "Đã lưu điểm danh.")


@view()
def confirm_online(ctx: Ctx) -> Response:
    """Confirm every "present online" suggestion of the room in one action (no reason: a
    first decision, not a correction)."""
    meeting = meeting_for(ctx, manage=True)
    try:
        names = att.confirm_suggestions(ctx.db, ctx.actor, meeting, ctx.now)
    except DomainError as exc:
        ctx.db.rollback()
        return _render_roster(ctx, meeting, status_code=400, error=exc.message)
    return ctx.redirect(f"/meetings/{meeting.id}/attendance",
                        f"Đã xác nhận có mặt trực tuyến: {', '.join(names)}.")


@view()
def roster_json(ctx: Ctx) -> Response:
    """Live counts for the room: anyone who may read the cell sees them."""
    meeting = meeting_for(ctx)
    counts = att.counts(att.current_roster(ctx.db, meeting, ctx.now))
    return JSONResponse({"meeting": meeting.id, "status": meeting.status.value, "counts": counts.as_dict()},
                        headers={"Cache-Control": "no-store"})


@view()
def roster_csv(ctx: Ctx) -> Response:
    meeting = meeting_for(ctx, audit=True)
    records = att.current_roster(ctx.db, meeting, ctx.now)
    dues = att.dues_for_month(ctx.db, meeting.cell_id, meeting.local_date)
    rows: list[list[object]] = [["Họ và tên", "Tư cách", "Phải dự", "Được biểu quyết", "Điểm danh", "Hình thức",
                                 "Lý do", "Phút trực tuyến", "Đảng phí tháng"]]
    for r in records:
        rows.append([
            r.full_name, r.standing.label, "có" if r.expected else "không", "có" if r.may_vote else "không",
            MARKS[mark_key(r)][0], r.mode.label if r.mode else "", r.reason_text or "",
            r.online_minutes if r.online_minutes is not None else "",
            dues[r.member_id].status.label if r.member_id in dues else "",
        ])
    return exports.csv_response(rows, f"diem-danh-{meeting.local_date.isoformat()}-{meeting.id}.csv")


@view()
def member_history(ctx: Ctx) -> Response:
    """A member's attendance, meeting by meeting — which ones counted them present online."""
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today)
    cells = scoping.member_cells(ctx.db, member, ctx.today)
    if not (ctx.scope.member_id == member.id or any(ctx.scope.can_audit(c) for c in cells)):
        raise Forbidden("Chỉ đảng viên đó, bí thư chi bộ và cấp ủy cấp trên được xem lịch sử dự họp.")
    rows = [(m, r) for m, r in att.history_of(ctx.db, member.id) if ctx.scope.can_read(m.cell_id)]
    return ctx.render("attendance_history.html", member=member, rows=rows, mark_label=lambda r: MARKS[mark_key(r)][0])


routes = [
    Route("/meetings/{meeting_id:int}/attendance", roster_page, name="attendance"),
    Route("/meetings/{meeting_id:int}/attendance/{member_id:int}", mark_member, methods=["POST"], name="mark"),
    Route("/meetings/{meeting_id:int}/attendance/confirm-online", confirm_online, methods=["POST"],
          name="attendance_confirm_online"),
    Route("/meetings/{meeting_id:int}/attendance.json", roster_json, name="attendance_json"),
    Route("/meetings/{meeting_id:int}/attendance.csv", roster_csv, name="attendance_csv"),
    Route("/members/{member_id:int}/attendance", member_history, name="member_attendance"),
]
