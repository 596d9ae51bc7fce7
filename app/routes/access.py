"""Access to a meeting for the pages about it: one place, on top of meetings.scoping."""

from __future__ import annotations

from meetings.foundation.errors import Forbidden, ValidationError
from meetings.organisation import scoping
from meetings.organisation.members import Member
from meetings.planning.access import access_meeting, audits_meeting
from meetings.planning.meetings import Meeting

from ..web import Ctx


def meeting_for(ctx: Ctx, *, manage: bool = False, audit: bool = False) -> Meeting:
    """The meeting in the path. 404 unless its cell is readable; 403 when ``manage`` is asked
    and the account does not manage the cell, or ``audit`` is asked and it neither manages the
    cell nor audits it."""
    meeting = access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"))
    if manage and not ctx.scope.can_manage(meeting.cell_id):
        raise Forbidden("Chỉ bí thư chi bộ mới thực hiện được thao tác này.")
    if audit and not audits_meeting(ctx.db, ctx.scope, meeting):
        raise Forbidden("Chỉ bí thư chi bộ và cấp ủy cấp trên được xem trang này.")
    return meeting


def year_param(ctx: Ctx) -> int:
    raw = ctx.request.query_params.get("year", "")
    try:
        year = int(raw) if raw else ctx.today.year
    except ValueError:
        raise ValidationError("Năm không hợp lệ.") from None
    if not 2000 <= year <= ctx.today.year + 1:
        raise ValidationError("Năm không hợp lệ.")
    return year


def quarter_param(ctx: Ctx) -> int | None:
    raw = ctx.request.query_params.get("quarter", "")
    if raw in ("", "0"):
        return None
    if raw not in ("1", "2", "3", "4"):
        raise ValidationError("Quý không hợp lệ (chỉ nhận 1, 2, 3 hoặc 4).")
    return int(raw)


def member_record_access(ctx: Ctx, member_id: int) -> Member:
    """A member's yearly record and review: the member, the secretaries of the cells they
    belong to, the auditors and admins above. Anyone else: 404 (outside) or 403."""
    member = scoping.access_member(ctx.db, ctx.scope, member_id, ctx.today)
    cells = scoping.member_cells(ctx.db, member, ctx.today)
    if not (ctx.scope.member_id == member.id or any(ctx.scope.can_audit(c) for c in cells)):
        raise Forbidden("Chỉ đảng viên đó, bí thư chi bộ và cấp ủy cấp trên được xem hồ sơ năm của đảng viên.")
    return member
