"""The meeting room page, its join tokens, and opening/closing a meeting."""

from __future__ import annotations

import re

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meetings.foundation.errors import Forbidden, NotFound
from meetings.organisation.organisations import Organisation
from meetings.planning import dates
from meetings.planning import meetings as mt
from meetings.planning.access import audits_meeting
from meetings.planning.meetings import Meeting, MeetingStatus
from meetings.proceedings.room_access import RoomAccess, RoomRefusal, RoomRole, room_access
from realtime import protocol
from realtime.admission import AdmissionCache
from realtime.tokens import JoinGrant, issue_join_token

from ..web import Ctx, view


def _access(ctx: Ctx, device: str = "member") -> RoomAccess:
    """The room as the account sees it on ``device`` (``proceedings.room_access``); 404 when
    the meeting is not there for it."""
    access = room_access(ctx.db, ctx.scope, ctx.path_int("meeting_id"), device)
    if isinstance(access, RoomRefusal):
        raise NotFound()
    return access


def _refused(refusal: RoomRefusal) -> Response:
    return JSONResponse({"error": refusal.code, "message": refusal.reason}, status_code=403)


def _token(ctx: Ctx, meeting_id: int, device: str) -> str:
    grant = JoinGrant(meeting_id=meeting_id, account_id=ctx.account.id, member_id=ctx.account.member_id,
                      device=device, session_id=ctx.login.session_id if ctx.login else None)
    return issue_join_token(ctx.request.app.state.settings.secret_key, grant)


#: The join-token route's path: its view opens the login session itself, in its one transaction
#: (``app.sessions``, deferred routes): it is on every member's way into the room.
TOKEN_PATH = re.compile(r"/meetings/[0-9]{1,18}/room/token")


#: The room's ES modules, preloaded in parallel by the page (``<link rel="modulepreload">``):
#: without it the browser finds each import only after fetching its importer, one round
#: trip per level of the module graph. tests/test_assets.py checks the list is complete.
ROOM_MODULES = ("room.js", "signalling.js", "media.js", "peers.js", "relay.js", "stats.js", "watch.js",
                "health.js", "uplink.js", "view.js", "layout.js", "rejoin.js")


@view()
def room_page(ctx: Ctx) -> Response:
    access = _access(ctx, "hall" if ctx.request.query_params.get("device") == "hall" else "member")
    if access.device == "hall" and not access.chair:
        access = _access(ctx)  # the hall device is the chair's: anyone else gets their own view
    meeting, chair, device = access.meeting, access.chair, access.device
    cell = ctx.db.get(Organisation, meeting.cell_id)
    removed = access.removed
    can_join = access.role is not RoomRole.OBSERVER and meeting.status in (MeetingStatus.OPEN, MeetingStatus.SCHEDULED)
    # A join token with the page: the first connection needs no token request of its own
    # (one round trip less before media). Short-lived and single-use; reconnections get fresh
    # ones from the room (``welcome``) or the token route.
    token = _token(ctx, meeting.id, device) if can_join and not removed else None
    response = ctx.render(
        "room.html",
        removed=removed,
        can_see_attendance=audits_meeting(ctx.db, ctx.scope, meeting),
        meeting=meeting,
        cell=cell,
        chair=chair,
        device=device,
        decision=access.decision,
        protocol_version=protocol.PROTOCOL_VERSION,
        can_join=can_join,
        token=token,
        room_modules=ROOM_MODULES,
    )
    response.headers["Cache-Control"] = "no-store"  # it carries a join token
    return response


@view()
def room_token(ctx: Ctx) -> Response:
    """A fresh join token for (re)connecting; JSON for the room's script. On the join path: the
    decision is the one the handshake keeps too (``realtime.admission``)."""
    assert ctx.login is not None  # a logged-in view
    device = ctx.request.query_params.get("device", "member")
    admissions: AdmissionCache = ctx.request.app.state.admissions
    decision = admissions.decide(ctx.db, ctx.account, ctx.login.session_id, ctx.path_int("meeting_id"), device,
                                 ctx.today, scope=ctx.scope)
    if isinstance(decision, RoomRefusal):
        raise NotFound()
    if decision.refusal is not None:
        return _refused(decision.refusal)
    return JSONResponse({"token": _token(ctx, decision.meeting_id, device), "status": decision.status},
                        headers={"Cache-Control": "no-store"})


def _chair_meeting(ctx: Ctx) -> Meeting:
    access = _access(ctx)
    meeting = access.meeting
    if not access.chair:
        raise Forbidden("Chỉ bí thư chi bộ mới mở hoặc kết thúc cuộc họp.")
    return meeting


@view()
def meeting_open(ctx: Ctx) -> Response:
    """Start the meeting. On another day than planned the secretary first sees what the move
    means and confirms it with a reason (``planning.dates``); nothing changes until then."""
    meeting = _chair_meeting(ctx)
    try:
        moved = dates.start_meeting(ctx.db, ctx.actor, meeting, now=ctx.now, reason=ctx.field("reason") or None)
    except dates.MoveNeedsConfirmation as ask:
        ctx.db.rollback()
        return ctx.render("meeting_start_confirm.html", status_code=409, meeting=meeting, preview=ask.preview,
                          cell=ctx.db.get(Organisation, meeting.cell_id))
    if moved is not None:
        return ctx.redirect(f"/meetings/{meeting.id}/room",
                            f"Đã dời cuộc họp sang hôm nay ({moved.to_day:%d/%m/%Y}) và bắt đầu; "
                            "đảng viên được thông báo kèm lý do.")
    return ctx.redirect(f"/meetings/{meeting.id}/room", "Cuộc họp đã bắt đầu. Đảng viên có thể vào phòng họp.")


@view()
def meeting_close(ctx: Ctx) -> Response:
    """End the meeting: the one transition, which also ends its room (``app.room_closing``)."""
    meeting = _chair_meeting(ctx)
    mt.change_status(ctx.db, ctx.actor, meeting, MeetingStatus.CLOSED, now=ctx.now)
    return ctx.redirect(f"/meetings/{meeting.id}/room", "Cuộc họp đã kết thúc.")


routes = [
    Route("/meetings/{meeting_id:int}/room", room_page, name="room"),
    Route("/meetings/{meeting_id:int}/room/token", room_token, name="room_token"),
    Route("/meetings/{meeting_id:int}/open", meeting_open, methods=["POST"], name="meeting_open"),
    Route("/meetings/{meeting_id:int}/close", meeting_close, methods=["POST"], name="meeting_close"),
]
