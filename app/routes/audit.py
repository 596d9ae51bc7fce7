"""The higher committees' audit: regularity per subtree and cell, exports, the evaluation
policy, and the change log with its hash-chain check."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meetings import audit, organisations, policies, regularity, scoping, three_month
from meetings.errors import Forbidden
from meetings.organisations import Organisation, OrgKind
from meetings.regularity import Regular

from .. import charts, exports
from ..web import Ctx, view
from .access import can_audit, quarter_param, year_param

#: Flagged members are named on a committee's page up to this many cells (a commune).
MAX_CELLS_NAMED = 80


def _org_for_audit(ctx: Ctx) -> Organisation:
    assert ctx.scope is not None
    org = scoping.access_organisation(ctx.db, ctx.scope, ctx.path_int("org_id"))
    if not can_audit(ctx, org.id):
        raise Forbidden("Chỉ cấp ủy cấp trên (và bí thư đối với chi bộ mình) xem được trang kiểm tra nền nếp.")
    return org


def _grid_rows(result: regularity.Audit) -> list[charts.GridRow]:
    """Cells when the audited committee's children are cells; otherwise one row per child
    committee, coloured by the share of its cells that held each month's meeting."""
    rows = []
    by_child: dict[int, list[regularity.CellAudit]] = {}
    for cell in result.cells:
        by_child.setdefault(cell.child_id, []).append(cell)
    for child, _tally in result.children:
        cells = by_child.get(child.id, [])
        if child.kind == OrgKind.CELL and cells:
            cell = cells[0]
            rows.append(charts.GridRow(
                child.name, f"/cells/{child.id}/audit?year={result.year}",
                [mm.status.value for mm in cell.months],
                [f"{child.name}, tháng {mm.month}: {mm.status.label}"
                 + (f" ({mm.late_days} ngày sau ngày dự kiến)" if mm.late_days else "") for mm in cell.months]))
            continue
        values: list[str | float | None] = []
        titles = []
        for i, month in enumerate(result.months):
            due = sum(1 for c in cells if c.months[i].status != Regular.NOT_DUE)
            held = sum(1 for c in cells if c.months[i].status in (Regular.ON_TIME, Regular.LATE))
            values.append(None if due == 0 else held / due)
            titles.append(f"{child.name}, tháng {month}: {held}/{due} chi bộ đã họp" if due else
                          f"{child.name}, tháng {month}: chưa đến hạn")
        rows.append(charts.GridRow(child.name, f"/orgs/{child.id}/audit?year={result.year}", values, titles))
    return rows


def _page(ctx: Ctx, org: Organisation, year: int, quarter: int | None) -> dict[str, Any]:
    assert ctx.scope is not None
    result = regularity.audit(ctx.db, org, year, quarter, ctx.now)
    period = f"quý {quarter}/{year}" if quarter else f"năm {year}"
    cell_ids = [c.id for c in result.cells]
    return {
        "org": org, "year": year, "quarter": quarter, "result": result, "period": period,
        "grid": charts.month_grid(_grid_rows(result), result.months,
                                  caption=f"Sinh hoạt thường kỳ theo tháng, {period}"),
        "trend": charts.trend([(t.month, t.attendance_rate, t.away_online_rate) for t in result.trend],
                              caption=f"Tỷ lệ dự họp theo tháng, {period}"),
        "attention": regularity.cells_with_gaps(result) if org.kind != OrgKind.CELL else [],
        "flagged": three_month.raised_in(ctx.db, cell_ids, year) if len(cell_ids) <= MAX_CELLS_NAMED else None,
        "policy": policies.policy_for(ctx.db, org.id),
        "can_set_policy": ctx.scope.administers(org.id),
        "breadcrumb": [o for o in organisations.ancestors(ctx.db, org) if ctx.scope.can_read(o.id)],
        "Regular": Regular,
        "late_after": regularity.LATE_AFTER_DAYS,
    }


@view()
def org_audit(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    year, quarter = year_param(ctx), quarter_param(ctx)
    if org.kind == OrgKind.CELL:
        return RedirectResponse(f"/cells/{org.id}/audit?year={year}" + (f"&quarter={quarter}" if quarter else ""),
                                status_code=303)
    return ctx.render("audit.html", **_page(ctx, org, year, quarter))


@view()
def cell_audit(ctx: Ctx) -> Response:
    assert ctx.scope is not None
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    if not can_audit(ctx, cell.id):
        raise Forbidden("Chỉ bí thư chi bộ và cấp ủy cấp trên xem được trang kiểm tra nền nếp.")
    year, quarter = year_param(ctx), quarter_param(ctx)
    context = _page(ctx, cell, year, quarter)
    meetings, figures, adopted = regularity.meeting_figures(ctx.db, cell, year, quarter)
    return ctx.render("audit_cell.html", cell=cell, meetings=meetings, figures=figures, adopted=adopted,
                      cell_audit=context["result"].cells[0] if context["result"].cells else None, **context)


def _export_name(org: Organisation, year: int, quarter: int | None, ext: str) -> str:
    return f"kiem-tra-nen-nep-{org.code.lower()}-{year}{f'-q{quarter}' if quarter else ''}.{ext}"


@view()
def audit_csv(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    year, quarter = year_param(ctx), quarter_param(ctx)
    result = regularity.audit(ctx.db, org, year, quarter, ctx.now)
    return exports.csv_response(regularity.as_rows(result), _export_name(org, year, quarter, "csv"))


@view()
def audit_xlsx(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    year, quarter = year_param(ctx), quarter_param(ctx)
    result = regularity.audit(ctx.db, org, year, quarter, ctx.now)
    totals: list[list[object]] = [["Tổ chức", "Số chi bộ", "Thường kỳ đúng hạn", "Muộn", "Thiếu", "Chuyên đề đã họp",
                                   "Chuyên đề thiếu", "Biên bản đã thông qua", "Tỷ lệ dự họp (%)",
                                   "Đảng viên đi làm ăn xa", "Tham gia trực tuyến (%)", "Cảnh báo", "Xem xét xóa tên"]]
    for name, t in [(org.name, result.total), *[(c.name, t) for c, t in result.children]]:
        totals.append([name, t.cells, t.on_time, t.late, t.missing, t.thematic_held, t.thematic_missing,
                       t.minutes_adopted, regularity._percent(t.attendance_rate), t.away_members,
                       regularity._percent(t.away_online_rate), t.warnings, t.removal_reviews])
    return exports.xlsx_response([("Tổng hợp", totals), ("Chi bộ", regularity.as_rows(result))],
                                 _export_name(org, year, quarter, "xlsx"))


@view()
def evaluation_policy(ctx: Ctx) -> Response:
    """An admin of a committee sets, for its subtree, whether thematic absences count and the
    review date; the members' flags of the year are rechecked at once."""
    assert ctx.scope is not None
    org = scoping.access_organisation(ctx.db, ctx.scope, ctx.path_int("org_id"), manage=True)
    if not ctx.scope.administers(org.id):
        raise Forbidden("Chỉ quản trị cấp ủy thay đổi được thiết lập đánh giá.")
    # Bad input raises: the error page says why (400) and nothing is kept.
    policies.set_policy(ctx.db, ctx.actor, org, count_thematic=ctx.field("count_thematic") == "1",
                        review_date=ctx.field("review_date"), basis=ctx.field("basis"))
    cells = [c.id for c in organisations.subtree(ctx.db, org, kind=OrgKind.CELL)]
    three_month.recheck_cells(ctx.db, cells, ctx.today.year, ctx.now)
    target = f"/cells/{org.id}/audit" if org.kind == OrgKind.CELL else f"/orgs/{org.id}/audit"
    return ctx.redirect(target, "Đã lưu thiết lập đánh giá; cảnh báo của năm nay đã được tính lại.")


def chain_status(ctx: Ctx) -> dict[str, Any] | None:
    """The hash chain's check, when asked for (``?verify=1``): it reads the whole log. Breaks
    in entries outside the viewer's organisations are listed without their details."""
    assert ctx.scope is not None
    if ctx.request.query_params.get("verify") != "1":
        return None
    report = audit.verify(ctx.db)
    return {"report": report, "visible": {b.seq for b in report.breaks if ctx.scope.can_read(b.organisation_id)}}


@view()
def org_log(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    if org.kind == OrgKind.CELL:
        verify = "?verify=1" if ctx.request.query_params.get("verify") == "1" else ""
        return RedirectResponse(f"/cells/{org.id}/log{verify}", status_code=303)
    ids = [o.id for o in organisations.subtree(ctx.db, org)]
    return ctx.render("audit_log.html", org=org, cell=None, entries=audit.entries_for(ctx.db, ids),
                      chain=chain_status(ctx))


routes = [
    Route("/orgs/{org_id:int}/audit", org_audit, name="org_audit"),
    Route("/orgs/{org_id:int}/audit.csv", audit_csv, name="audit_csv"),
    Route("/orgs/{org_id:int}/audit.xlsx", audit_xlsx, name="audit_xlsx"),
    Route("/orgs/{org_id:int}/evaluation-policy", evaluation_policy, methods=["POST"], name="evaluation_policy"),
    Route("/orgs/{org_id:int}/log", org_log, name="org_log"),
    Route("/cells/{cell_id:int}/audit", cell_audit, name="cell_audit"),
]
