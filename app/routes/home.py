"""The start page and the organisation tree pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meetings.organisation import organisations, scoping
from meetings.organisation.members import Member, MemberPeriod, Membership, PeriodKind
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.planning import notices, schedules
from meetings.planning.meetings import Meeting, MeetingKind, MeetingStatus
from meetings.proceedings.room_access import RoomAccess, room_access

from ..web import Ctx, view


def _cell_meetings(ctx: Ctx, cell: Organisation | None, member: Member | None) -> dict[str, Any]:
    """The home cell's meeting in progress (with whether this account may join it from afar)
    and its next meeting: what a member opens the site for on a meeting day."""
    if cell is None or member is None:
        return {"live": None, "live_join": False, "next_meeting": None}
    # The cell's own meetings; the chi ủy's are on the schedule page for those who sit on it.
    coming = [m for m in schedules.upcoming(ctx.db, cell.id, ctx.now, past_days=1)
              if m.status != MeetingStatus.CANCELLED and m.kind != MeetingKind.COMMITTEE]
    live: Meeting | None = next((m for m in coming if m.status == MeetingStatus.OPEN), None)
    join = False
    if live is not None:
        access = room_access(ctx.db, ctx.scope, live.id)
        join = isinstance(access, RoomAccess) and access.may_join
    following = next((m for m in coming if m.status == MeetingStatus.SCHEDULED and m.starts_at >= ctx.now), None)
    return {"live": live, "live_join": join, "next_meeting": following}


@view()
def home(ctx: Ctx) -> Response:
    member = ctx.db.get(Member, ctx.account.member_id) if ctx.account.member_id else None
    home_cell = ctx.db.get(Organisation, member.home_cell_id) if member and member.home_cell_id else None
    managed = [ctx.db.get(Organisation, cid) for cid in sorted(ctx.scope.managed_cells)]
    audited = [
        ctx.db.get(Organisation, org_id)
        for role, org_id in sorted(ctx.scope.roles, key=lambda r: (r[0].value, r[1] or 0))
        if role.value in ("auditor", "admin") and org_id is not None
    ]
    return ctx.render(
        "home.html",
        notices=notices.notices_for_member(ctx.db, member.id, limit=8) if member else [],
        member=member,
        home_cell=home_cell,
        **_cell_meetings(ctx, home_cell, member),
        managed=[c for c in managed if c is not None],
        audited=[o for o in audited if o is not None],
        tops=scoping.top_organisations(ctx.db, ctx.scope) if ctx.scope.readable is None else [],
    )


def _cell_counts(ctx: Ctx, cell_ids: list[int]) -> dict[int, dict[str, int]]:
    """Members and away members per cell today, in two grouped queries."""
    counts = {cid: {"members": 0, "away": 0} for cid in cell_ids}
    if not cell_ids:
        return counts
    today = ctx.today
    current = (Membership.start_on <= today, or_(Membership.end_on.is_(None), Membership.end_on >= today))
    for cell_id, n in ctx.db.execute(
        select(Membership.cell_id, func.count()).where(Membership.cell_id.in_(cell_ids), *current)
        .group_by(Membership.cell_id)
    ):
        counts[cell_id]["members"] = n
    for cell_id, n in ctx.db.execute(
        select(Membership.cell_id, func.count(func.distinct(MemberPeriod.member_id)))
        .join(MemberPeriod, MemberPeriod.member_id == Membership.member_id)
        .where(
            Membership.cell_id.in_(cell_ids), *current,
            MemberPeriod.kind == PeriodKind.AWAY, MemberPeriod.start_on <= today,
            or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= today),
        )
        .group_by(Membership.cell_id)
    ):
        counts[cell_id]["away"] = n
    return counts


@view()
def organisation_page(ctx: Ctx) -> Response:
    org = scoping.access_organisation(ctx.db, ctx.scope, ctx.path_int("org_id"))
    if org.kind == OrgKind.CELL:
        return RedirectResponse(f"/cells/{org.id}", status_code=303)
    breadcrumb = [o for o in organisations.ancestors(ctx.db, org) if ctx.scope.can_read(o.id)]
    kids = [c for c in organisations.children(ctx.db, org) if ctx.scope.can_read(c.id)]
    cells = [c for c in organisations.subtree(ctx.db, org, kind=OrgKind.CELL) if ctx.scope.can_read(c.id)]
    counts = _cell_counts(ctx, [c.id for c in cells])
    subtree_totals: dict[int, dict[str, int]] = {}
    for child in kids:
        total = {"cells": 0, "members": 0, "away": 0}
        for cell in cells:
            if cell.path.startswith(child.path):
                total["cells"] += 1
                total["members"] += counts[cell.id]["members"]
                total["away"] += counts[cell.id]["away"]
        subtree_totals[child.id] = total
    return ctx.render(
        "organisation.html",
        org=org,
        breadcrumb=breadcrumb,
        children=kids,
        totals=subtree_totals,
        successor=ctx.db.get(Organisation, org.successor_id) if org.successor_id else None,
        notices=notices.notices_for_organisation(ctx.db, org.id, limit=10)
        if ctx.scope.can_audit(org.id) else [],
        can_set_email=ctx.scope.administers(org.id),
        can_audit=ctx.scope.can_audit(org.id),
    )


routes = [
    Route("/", home, name="home"),
    Route("/orgs/{org_id:int}", organisation_page, name="organisation"),
]
