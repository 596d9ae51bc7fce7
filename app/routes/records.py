"""Yearly records: a member's year, a cell's and a committee's year-end lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meetings.evaluation import records, reviews, three_month
from meetings.evaluation.reviews import Grade, YearReview
from meetings.evaluation.three_month import Level, Rule, level_for
from meetings.foundation.errors import Forbidden
from meetings.foundation.text import name_sort_key
from meetings.organisation import organisations, scoping
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation, OrgKind

from ..tuning import paused_gc
from ..web import Ctx, view
from .access import member_record_access, year_param

#: A committee's year-end list names every member up to this many cells (a commune); above
#: it, the page sums per committee below and the auditor drills down.
MAX_CELLS_LISTED = 80


def record_context(ctx: Ctx, member: Member, year: int) -> dict[str, Any]:
    """What the record and the review pages show about the member's year."""
    record = records.record_of(ctx.db, member.id, year)
    names = records.cell_names(ctx.db, sorted({line.cell_id for line in record.lines}))
    return {
        "record": record,
        "cell_names": names,
        "levels": {Rule.ABSENCE: level_for(len(record.absence_months)),
                   Rule.DUES: level_for(len(record.dues_months))},
        "readable": {cid for cid in names if ctx.scope.can_read(cid)},
        "Level": Level,
        "Rule": Rule,
    }


@view()
def member_record(ctx: Ctx) -> Response:
    member = member_record_access(ctx, ctx.path_int("member_id"))
    year = year_param(ctx)
    home = ctx.db.get(Organisation, member.home_cell_id) if member.home_cell_id else None
    return ctx.render("record.html", member=member, year=year, home_cell=home, today=ctx.today,
                      review=reviews.get_review(ctx.db, member.id, year),
                      eligibility=reviews.eligibility(ctx.db, member, year),
                      **record_context(ctx, member, year))


def _rows_for_cells(ctx: Ctx, cell_ids: list[int], year: int) -> list[dict[str, Any]]:
    """One row per member of the cells: the year's figures, flags, eligibility and review."""
    pairs = records.members_of_cells(ctx.db, cell_ids, year)
    ids = [m for m, _ in pairs]
    people = {m.id: m for m in ctx.db.scalars(select(Member).where(Member.id.in_(ids)))} if ids else {}
    with paused_gc():
        recs = records.records_for(ctx.db, ids, year)
    revs = reviews.reviews_of(ctx.db, ids, year)
    allowed = reviews.eligibilities(ctx.db, list(people.values()), year)
    rows: list[dict[str, Any]] = []
    for member_id, cell_id in pairs:
        record = recs[member_id]
        rows.append({
            "member": people[member_id], "cell_id": cell_id, "record": record, "review": revs.get(member_id),
            "eligibility": allowed[member_id],
            "absence": level_for(len(record.absence_months)), "dues": level_for(len(record.dues_months)),
        })
    rows.sort(key=lambda r: (r["cell_id"], name_sort_key(r["member"].full_name)))
    return rows


@view()
def cell_records(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    if not ctx.scope.can_audit(cell.id):
        raise Forbidden("Chỉ bí thư chi bộ và cấp ủy cấp trên xem được hồ sơ năm của đảng viên.")
    year = year_param(ctx)
    return ctx.render("records_list.html", org=cell, year=year, cells={cell.id: cell.name},
                      rows=_rows_for_cells(ctx, [cell.id], year), children=None, Level=Level,
                      breadcrumb=[o for o in organisations.ancestors(ctx.db, cell) if ctx.scope.can_read(o.id)])


@view()
def org_records(ctx: Ctx) -> Response:
    """A committee's year-end list: every member of a commune; sums per committee above."""
    org = scoping.access_organisation(ctx.db, ctx.scope, ctx.path_int("org_id"))
    if not ctx.scope.can_audit(org.id):
        raise Forbidden("Chỉ cấp ủy cấp trên xem được hồ sơ năm của đảng viên.")
    year = year_param(ctx)
    if org.kind == OrgKind.CELL:
        return RedirectResponse(f"/cells/{org.id}/records?year={year}", status_code=303)
    cells = dict(ctx.db.execute(select(Organisation.id, Organisation.name).where(
        organisations.subtree_filter(org), Organisation.kind == OrgKind.CELL).order_by(Organisation.path)).all())
    breadcrumb = [o for o in organisations.ancestors(ctx.db, org) if ctx.scope.can_read(o.id)]
    if len(cells) <= MAX_CELLS_LISTED:
        return ctx.render("records_list.html", org=org, year=year, cells=cells, Level=Level, children=None,
                          rows=_rows_for_cells(ctx, list(cells), year), breadcrumb=breadcrumb)
    return ctx.render("records_list.html", org=org, year=year, cells=cells, rows=None, Level=Level,
                      children=_child_sums(ctx, org, year), grades=list(Grade), breadcrumb=breadcrumb)


def _child_sums(ctx: Ctx, org: Organisation, year: int) -> list[tuple[Organisation, dict[str, Any]]]:
    """Per committee below ``org``: reviews by status and grade, and flags, in grouped queries."""
    depth = len([p for p in org.path.split("/") if p])
    children = organisations.children(ctx.db, org)
    # Keyed by child id; None (a cell under no child, never in the dict) finds nothing.
    by_id: dict[int | None, dict[str, Any]] = {
        c.id: {"cells": 0, "status": {}, "grades": {}, "warnings": 0, "removal": 0} for c in children}
    paths = dict(ctx.db.execute(select(Organisation.id, Organisation.path).where(
        organisations.subtree_filter(org), Organisation.kind == OrgKind.CELL)).all())

    def child_of(cell_id: int) -> int | None:
        parts = [p for p in paths.get(cell_id, "").split("/") if p]
        return int(parts[depth]) if len(parts) > depth else None

    for cell_id in paths:
        child = child_of(cell_id)
        if child in by_id:
            by_id[child]["cells"] += 1
    subtree = select(Organisation.id).where(organisations.subtree_filter(org)).scalar_subquery()
    for cell_id, status, grade, n in ctx.db.execute(
            select(YearReview.cell_id, YearReview.status, YearReview.confirmed_grade, func.count())
            .where(YearReview.cell_id.in_(subtree), YearReview.year == year)
            .group_by(YearReview.cell_id, YearReview.status, YearReview.confirmed_grade)):
        sums = by_id.get(child_of(cell_id))
        if sums is None:
            continue
        sums["status"][status] = sums["status"].get(status, 0) + n
        if grade is not None:
            sums["grades"][grade] = sums["grades"].get(grade, 0) + n
    for flag, _name, _cell in three_month.raised_in(ctx.db, list(paths), year):
        sums = by_id.get(child_of(flag.cell_id))
        if sums is not None:
            sums["removal" if flag.level >= Level.REMOVAL_REVIEW else "warnings"] += 1
    return [(c, by_id[c.id]) for c in children]


routes = [
    Route("/members/{member_id:int}/record", member_record, name="member_record"),
    Route("/cells/{cell_id:int}/records", cell_records, name="cell_records"),
    Route("/orgs/{org_id:int}/records", org_records, name="org_records"),
]
