"""The votes page: open motions, enter the hall's counts, record named in-person votes,
close and see results. Members vote in the room; the room hears of changes made here."""

from __future__ import annotations

from collections.abc import Callable

import anyio.from_thread
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.routing import Route

from meetings.foundation.errors import DomainError, ValidationError
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting, MeetingStatus
from meetings.proceedings import attendance as att
from meetings.proceedings import votes
from meetings.proceedings.attendance import AttendanceStatus

from ..web import Ctx, view
from .access import meeting_for

#: More ballots than this in one hall is a typing error (and would overflow the column).
MAX_COUNT = 1_000_000


def _int(ctx: Ctx, name: str) -> int:
    raw = ctx.field(name).strip() or "0"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) > MAX_COUNT:
        raise ValidationError("Số phiếu phải là số nguyên không âm.")
    return int(raw)


def _render(ctx: Ctx, meeting: Meeting, *, status_code: int = 200, error: str | None = None) -> Response:
    motions = votes.motions_of(ctx.db, meeting.id)
    records = att.current_roster(ctx.db, meeting, ctx.now)
    in_hall = [r for r in records if r.may_vote and r.status == AttendanceStatus.PRESENT
               and r.mode is not None and r.mode.value == "in_person"]
    return ctx.render(
        "votes.html", status_code=status_code, error=error, meeting=meeting,
        cell=ctx.db.get(Organisation, meeting.cell_id), motions=motions,
        tallies={m.id: votes.tally(ctx.db, m) for m in motions},
        named={m.id: votes.named_votes(ctx.db, m) for m in motions},
        names={r.member_id: r.full_name for r in records}, in_hall=in_hall,
        counts=att.counts(records), can_manage=ctx.scope.can_manage(meeting.cell_id),
        kinds=list(votes.VoteKind), choices=list(votes.Choice), open_meeting=meeting.status == MeetingStatus.OPEN,
    )


def _announce(ctx: Ctx, meeting_id: int) -> BackgroundTask:
    hub = ctx.request.app.state.rooms

    async def tell_room() -> None:
        await hub.command(meeting_id, "announce_vote")

    return BackgroundTask(tell_room)


@view()
def votes_page(ctx: Ctx) -> Response:
    return _render(ctx, meeting_for(ctx))


def _act(ctx: Ctx, action: Callable[[Meeting], object]) -> Response:
    meeting = meeting_for(ctx, manage=True)
    try:
        action(meeting)
    except DomainError as exc:
        ctx.db.rollback()
        return _render(ctx, meeting, status_code=400, error=exc.message)
    response = ctx.redirect(f"/meetings/{meeting.id}/votes", "Đã lưu.")
    response.background = _announce(ctx, meeting.id)
    return response


@view()
def motion_open(ctx: Ctx) -> Response:
    return _act(ctx, lambda m: votes.open_motion(ctx.db, ctx.actor, m, ctx.field("title"), ctx.field("kind"),
                                                 ctx.now))


def _motion(ctx: Ctx, meeting: Meeting) -> votes.Motion:
    motion = votes.get_motion(ctx.db, ctx.path_int("motion_id"))
    if motion.meeting_id != meeting.id:
        raise ValidationError("Nội dung biểu quyết không thuộc cuộc họp này.")
    return motion


@view()
def motion_counts(ctx: Ctx) -> Response:
    return _act(ctx, lambda m: votes.set_in_person_counts(
        ctx.db, ctx.actor, m, _motion(ctx, m), agree=_int(ctx, "agree"), disagree=_int(ctx, "disagree"),
        abstain=_int(ctx, "abstain")))


@view()
def motion_record(ctx: Ctx) -> Response:
    """A named vote given in the hall (open votes), recorded by the secretary."""
    def record(m: Meeting) -> None:
        motion = _motion(ctx, m)
        if motion.kind != votes.VoteKind.OPEN:
            raise ValidationError("Bỏ phiếu kín: chỉ nhập tổng số phiếu kiểm tại hội trường.")
        member = ctx.field_id("member_id")
        if member is None:
            raise ValidationError("Hãy chọn đảng viên.")
        votes.cast(ctx.db, m, motion, member, ctx.field("choice"), channel="in_person", now=ctx.now)

    return _act(ctx, record)


@view()
def motion_close(ctx: Ctx) -> Response:
    meeting = meeting_for(ctx, manage=True)
    motion = votes.get_motion(ctx.db, ctx.path_int("motion_id"))
    if motion.meeting_id != meeting.id or motion.kind != votes.VoteKind.SECRET:
        return _act(ctx, lambda m: votes.close_motion(ctx.db, ctx.actor, m, _motion(ctx, m), ctx.now))
    # A secret ballot's online ballots are in the room's ballot box, in whichever process
    # runs the room: the room closes it (in its own transaction, so this one ends first).
    meeting_id, motion_id, actor = meeting.id, motion.id, ctx.actor
    ctx.db.rollback()
    hub = ctx.request.app.state.rooms
    try:
        anyio.from_thread.run(hub.close_secret_ballot, meeting_id, motion_id, actor)
    except DomainError as exc:
        return _render(ctx, meeting, status_code=400, error=exc.message)
    return ctx.redirect(f"/meetings/{meeting_id}/votes", "Đã chốt kết quả bỏ phiếu kín.")


routes = [
    Route("/meetings/{meeting_id:int}/votes", votes_page, name="votes"),
    Route("/meetings/{meeting_id:int}/votes/new", motion_open, methods=["POST"], name="motion_open"),
    Route("/meetings/{meeting_id:int}/votes/{motion_id:int}/counts", motion_counts, methods=["POST"],
          name="motion_counts"),
    Route("/meetings/{meeting_id:int}/votes/{motion_id:int}/record", motion_record, methods=["POST"],
          name="motion_record"),
    Route("/meetings/{meeting_id:int}/votes/{motion_id:int}/close", motion_close, methods=["POST"],
          name="motion_close"),
]
