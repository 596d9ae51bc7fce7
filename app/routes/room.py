"""The meeting room page, its join tokens, and opening/closing a meeting."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meetings import meetings as mt
from meetings import presence
from meetings.errors import Forbidden
from meetings.meetings import Meeting, MeetingStatus
from meetings.online import RemoteDecision, remote_decision
from meetings.organisations import Organisation
from realtime import protocol
from realtime.tokens import JoinGrant, issue_join_token

from ..web import Ctx, view
from .access import is_chair, meeting_for


def _meeting_for(ctx: Ctx) -> tuple[Meeting, bool, RemoteDecision]:
    """The meeting (404 unless its cell is readable), whether the account chairs it, and
    whether it may join remotely."""
    assert ctx.account is not None
    meeting = meeting_for(ctx)
    chair = is_chair(ctx, meeting)
    decision = remote_decision(ctx.db, meeting, ctx.account.member_id, is_secretary=chair)
    return meeting, chair, decision


def _token(ctx: Ctx, meeting: Meeting, device: str) -> str:
    assert ctx.account is not None
    grant = JoinGrant(meeting_id=meeting.id, account_id=ctx.account.id, member_id=ctx.account.member_id,
                      device=device)
    return issue_join_token(ctx.request.app.state.settings.secret_key, grant)


#: The room's ES modules, preloaded in parallel by the page (``<link rel="modulepreload">``):
#: without it the browser finds each import only after fetching its importer, one round
#: trip per level of the module graph. tests/test_assets.py checks the list is complete.
ROOM_MODULES = ("room.js", "signalling.js", "media.js", "peers.js", "relay.js", "stats.js", "watch.js",
                "health.js", "uplink.js", "view.js")


@view()
def room_page(ctx: Ctx) -> Response:
    meeting, chair, decision = _meeting_for(ctx)
    device = "hall" if ctx.request.query_params.get("device") == "hall" and chair else "member"
    cell = ctx.db.get(Organisation, meeting.cell_id)
    can_join = decision.allowed and meeting.status in (MeetingStatus.OPEN, MeetingStatus.SCHEDULED)
    # A join token with the page: the first connection needs no token request of its own
    # (one round trip less before media). Short-lived; reconnections fetch fresh ones.
    token = _token(ctx, meeting, device) if can_join else None
    response = ctx.render(
        "room.html",
        meeting=meeting,
        cell=cell,
        chair=chair,
        device=device,
        decision=decision,
        protocol_version=protocol.PROTOCOL_VERSION,
        can_join=can_join,
        token=token,
        room_modules=ROOM_MODULES,
    )
    response.headers["Cache-Control"] = "no-store"  # it carries a join token
    return response


@view()
def room_token(ctx: Ctx) -> Response:
    """A fresh join token for (re)connecting; JSON for the room's script."""
    meeting, chair, decision = _meeting_for(ctx)
    device = ctx.request.query_params.get("device", "member")
    if device not in ("member", "hall") or (device == "hall" and not chair):
        return JSONResponse({"error": "not_allowed", "message": "Thiết bị không hợp lệ."}, status_code=403)
    if not decision.allowed:
        return JSONResponse({"error": "not_allowed", "message": decision.reason}, status_code=403)
    return JSONResponse({"token": _token(ctx, meeting, device), "status": meeting.status.value},
                        headers={"Cache-Control": "no-store"})


def _chair_meeting(ctx: Ctx) -> Meeting:
    meeting, chair, _ = _meeting_for(ctx)
    if not chair:
        raise Forbidden("Chỉ bí thư chi bộ mới mở hoặc kết thúc cuộc họp.")
    return meeting


@view()
def meeting_open(ctx: Ctx) -> Response:
    meeting = _chair_meeting(ctx)
    mt.change_status(ctx.db, ctx.actor, meeting, MeetingStatus.OPEN, now=ctx.now)
    return ctx.redirect(f"/meetings/{meeting.id}/room", "Cuộc họp đã bắt đầu. Đảng viên có thể vào phòng họp.")


@view()
def meeting_close(ctx: Ctx) -> Response:
    meeting = _chair_meeting(ctx)
    mt.change_status(ctx.db, ctx.actor, meeting, MeetingStatus.CLOSED, now=ctx.now)
    response = ctx.redirect(f"/meetings/{meeting.id}/room", "Cuộc họp đã kết thúc.")
    hub = ctx.request.app.state.rooms
    db = ctx.request.app.state.db
    meeting_id = meeting.id

    async def close_room() -> None:
        # After the commit: the room (wherever it lives) writes everyone's leave, then any
        # interval still open is closed at the time its member was last seen.
        await hub.close_room(meeting_id)
        await db.run(lambda s: presence.close_stale(s, meeting_id))

    response.background = BackgroundTask(close_room)
    return response


routes = [
    Route("/meetings/{meeting_id:int}/room", room_page, name="room"),
    Route("/meetings/{meeting_id:int}/room/token", room_token, name="room_token"),
    Route("/meetings/{meeting_id:int}/open", meeting_open, methods=["POST"], name="meeting_open"),
    Route("/meetings/{meeting_id:int}/close", meeting_close, methods=["POST"], name="meeting_close"),
]
