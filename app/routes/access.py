"""Access to a meeting for the pages about it: one place, on top of meetings.scoping."""

from __future__ import annotations

from meetings import scoping
from meetings.errors import Forbidden
from meetings.meetings import Meeting

from ..web import Ctx


def meeting_for(ctx: Ctx, *, manage: bool = False, audit: bool = False) -> Meeting:
    """The meeting in the path. 404 unless its cell is readable; 403 when ``manage`` is asked
    and the account does not manage the cell, or ``audit`` is asked and it neither manages the
    cell nor audits it."""
    assert ctx.scope is not None
    meeting = scoping.access_meeting(ctx.db, ctx.scope, ctx.path_int("meeting_id"))
    if manage and not ctx.scope.can_manage(meeting.cell_id):
        raise Forbidden("Chỉ bí thư chi bộ mới thực hiện được thao tác này.")
    if audit and not (ctx.scope.can_manage(meeting.cell_id) or ctx.scope.is_auditor):
        raise Forbidden("Chỉ bí thư chi bộ và cấp ủy cấp trên được xem trang này.")
    return meeting


def is_chair(ctx: Ctx, meeting: Meeting) -> bool:
    """The cell's secretary or deputy (or an admin) runs the meeting."""
    assert ctx.scope is not None
    return ctx.scope.chairs(meeting.cell_id)
