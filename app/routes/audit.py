"""The higher committees' audit: regularity per subtree and cell, exports, the evaluation
policy, and the change log with its hash-chain check."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meetings.evaluation import policies, regularity, three_month
from meetings.evaluation.regularity import Regular
from meetings.foundation import audit
from meetings.foundation.errors import Forbidden, NotFound
from meetings.organisation import organisations, scoping
from meetings.organisation.accounts import Role
from meetings.organisation.organisations import Organisation, OrgKind

from .. import changelog, charts, exports
from ..tuning import paused_gc
from ..web import Ctx, view
from .access import quarter_param, year_param

#: Flagged members are named on a committee's page up to this many cells (a commune).
MAX_CELLS_NAMED = 80


def _org_for_audit(ctx: Ctx) -> Organisation:
    org = scoping.access_organisation(ctx.db, ctx.scope, ctx.path_int("org_id"))
    if not ctx.scope.can_audit(org.id):
        raise Forbidden("Chỉ cấp ủy cấp trên (và bí thư đối với chi bộ mình) xem được trang kiểm tra nền nếp.")
    return org


def _grid_rows(result: regularity.Audit) -> list[charts.GridRow]:
    """Cells when the audited committee's children are cells; otherwise one row per child
    committee, coloured by the share of the cells under it that month that held the month's
    meeting (a cell that moved counts under the committee it stood under that month)."""
    rows = []
    for child, _tally in result.children:
        if child.kind == OrgKind.CELL and (cell := result.cell(child.id)) is not None:
            rows.append(charts.GridRow(
                child.name, f"/cells/{child.id}/audit?year={result.year}&via={result.org.id}",
                [mm.status.value for mm in cell.months],
                [f"{child.name}, tháng {mm.month}: "
                 + (mm.status.label if mm.status != Regular.OUTSIDE else "thuộc cấp ủy khác")
                 + (f" ({mm.late_days} ngày sau ngày dự kiến)" if mm.late_days else "") for mm in cell.months]))
            continue
        values: list[str | float | None] = []
        titles = []
        due, held = result.due.get(child.id), result.held.get(child.id)
        for i, month in enumerate(result.months):
            n, k = (due[i], held[i]) if due and held else (0, 0)
            values.append(None if n == 0 else k / n)
            titles.append(f"{child.name}, tháng {month}: {k}/{n} chi bộ đã họp" if n else
                          f"{child.name}, tháng {month}: chưa đến hạn")
        rows.append(charts.GridRow(child.name, f"/orgs/{child.id}/audit?year={result.year}", values, titles))
    return rows


def _page(ctx: Ctx, org: Organisation, year: int, quarter: int | None, *, subject: Organisation | None = None,
          only_cell: int | None = None) -> dict[str, Any]:
    """The audit of ``org`` (the committee it is seen from); ``subject`` is the page's own
    organisation (a cell's page seen from a committee: only that cell, ``only_cell``)."""
    subject = subject or org
    result = regularity.audit(ctx.db, org, year, quarter, ctx.now, only_cell=only_cell)
    period = f"quý {quarter}/{year}" if quarter else f"năm {year}"
    attention = regularity.cells_with_gaps(result) if subject.kind != OrgKind.CELL else []
    shown = [*attention, *(c for child, _ in result.children
                            if child.kind == OrgKind.CELL and (c := result.cell(child.id)) is not None)]
    return {
        "org": subject, "year": year, "quarter": quarter, "result": result, "period": period,
        "grid": charts.month_grid(_grid_rows(result), result.months,
                                  caption=f"Sinh hoạt thường kỳ theo tháng, {period}"),
        "trend": charts.trend([(t.month, t.attendance_rate, t.away_online_rate) for t in result.trend],
                              caption=f"Tỷ lệ dự họp theo tháng, {period}"),
        "attention": attention,
        "flagged": (three_month.raised_in(ctx.db, [c.id for c in result.cells], year)
                    if result.total.cells <= MAX_CELLS_NAMED else None),
        "policy": policies.policy_for(ctx.db, subject.id),
        "can_set_policy": ctx.scope.administers(subject.id),
        "breadcrumb": [o for o in organisations.ancestors(ctx.db, subject) if ctx.scope.can_read(o.id)],
        "Regular": Regular,
        "late_after": regularity.LATE_AFTER_DAYS,
        # Cells shown that stand elsewhere today: their pages are reached as seen from this
        # committee (only the cells the page links to are looked at: a province has thousands).
        "moved_away": {c.id for c in shown if not c.path.startswith(org.path)},
    }


@view()
def org_audit(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    year, quarter = year_param(ctx), quarter_param(ctx)
    if org.kind == OrgKind.CELL:
        return RedirectResponse(f"/cells/{org.id}/audit?year={year}" + (f"&quarter={quarter}" if quarter else ""),
                                status_code=303)
    # The collector paused until the page is written, not only while the audit is computed:
    # resumed earlier, its first pass walked every object the audit had just made (still
    # alive for the page), a sixth of the page's time in Python at a province's size.
    with paused_gc():
        return ctx.render("audit.html", **_page(ctx, org, year, quarter))


def _vantage(ctx: Ctx, cell: Organisation, year: int, quarter: int | None) -> Organisation:
    """The committee a cell's audit page is seen from. ``?via=`` names it (the page reached
    from a committee's audit, also for a cell that has moved away since); otherwise the cell
    itself for its secretary (and the admins above, who manage it), and for an auditor the
    nearest committee above the cell that they audit — so that each sees the months the cell
    stood under them (decision 11), never another committee's."""
    via = ctx.request.query_params.get("via", "")
    if via:
        if not via.isdigit():
            raise NotFound()
        org = scoping.access_organisation(ctx.db, ctx.scope, int(via))
        if not ctx.scope.can_audit(org.id):
            raise Forbidden("Chỉ cấp ủy cấp trên (và bí thư đối với chi bộ mình) xem được trang kiểm tra nền nếp.")
        if cell.id not in regularity.cells_of_period(ctx.db, org, year, quarter):
            raise NotFound()
        return org
    if not (ctx.scope.can_read(cell.id) and ctx.scope.can_audit(cell.id)):
        raise NotFound() if not ctx.scope.can_read(cell.id) else Forbidden(
            "Chỉ bí thư chi bộ và cấp ủy cấp trên xem được trang kiểm tra nền nếp.")
    if ctx.scope.can_manage(cell.id):
        return cell
    for org in reversed(organisations.ancestors(ctx.db, cell)):
        if ctx.scope.has_role(Role.AUDITOR, org.id):
            return org
    return cell


@view()
def cell_audit(ctx: Ctx) -> Response:
    cell = ctx.db.get(Organisation, ctx.path_int("cell_id"))
    if cell is None or cell.kind != OrgKind.CELL:
        raise NotFound()
    year, quarter = year_param(ctx), quarter_param(ctx)
    vantage = _vantage(ctx, cell, year, quarter)
    with paused_gc():
        context = _page(ctx, vantage, year, quarter, subject=cell, only_cell=cell.id)
        cell_audit = context["result"].cells[0] if context["result"].cells else None
        meetings, figures, adopted = regularity.meeting_figures(ctx.db, cell, year, quarter,
                                                                cell_audit.spans if cell_audit else [])
        return ctx.render("audit_cell.html", cell=cell, meetings=meetings, figures=figures, adopted=adopted,
                          cell_audit=cell_audit, vantage=vantage, **context)


def _export_name(org: Organisation, year: int, quarter: int | None, ext: str) -> str:
    return f"kiem-tra-nen-nep-{org.code.lower()}-{year}{f'-q{quarter}' if quarter else ''}.{ext}"


@view()
def audit_csv(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    year, quarter = year_param(ctx), quarter_param(ctx)
    with paused_gc():
        result = regularity.audit(ctx.db, org, year, quarter, ctx.now, detail_all=True)
    return exports.csv_response(regularity.as_rows(result), _export_name(org, year, quarter, "csv"))


@view()
def audit_xlsx(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    year, quarter = year_param(ctx), quarter_param(ctx)
    with paused_gc():
        result = regularity.audit(ctx.db, org, year, quarter, ctx.now, detail_all=True)
    totals: list[list[regularity.ExportValue]] = [["Tổ chức", "Số chi bộ", "Thường kỳ đúng hạn", "Muộn", "Thiếu", "Chuyên đề đã họp",
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


def _anchors(ctx: Ctx) -> tuple[list[tuple[int, str]], str | None]:
    """The "seq:hash" pair the reader wrote down earlier and typed in to compare (?anchor=)."""
    raw = ctx.request.query_params.get("anchor", "").strip()
    if not raw:
        return [], None
    seq, _, digest = raw.partition(":")
    digest = digest.strip().lower()
    if not seq.strip().lstrip("#").isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return [], "Mã đối chiếu phải có dạng số mục:mã băm (ví dụ 1234:9f86d0…, mã băm gồm 64 ký tự 0–9, a–f)."
    return [(int(seq.strip().lstrip("#")), digest)], None


def chain_status(ctx: Ctx) -> dict[str, Any] | None:
    """The hash chain's check, when asked for (``?verify=1``; the page's script asks for it as
    soon as the page is shown): it reads the whole log. Breaks in entries outside the viewer's
    organisations are listed without their details."""
    if ctx.request.query_params.get("verify") != "1":
        return None
    anchors, anchor_error = _anchors(ctx)
    report = audit.verify(ctx.db, anchors=anchors)
    return {"report": report, "visible": {b.seq for b in report.breaks if ctx.scope.can_read(b.organisation_id)},
            "anchored": [seq for seq, _ in anchors], "anchor_error": anchor_error,
            "anchor": ctx.request.query_params.get("anchor", "")}


def log_page(ctx: Ctx, organisation_ids: list[int], *, cell: Organisation | None = None,
             org: Organisation | None = None, members: list[tuple[int, str]] | None = None) -> Response:
    """A change log: a page of sentences, filtered by kind of change and (in a cell) by member."""
    params = ctx.request.query_params
    kind = params.get("kind") if params.get("kind") in changelog.KINDS else None
    member_raw = params.get("member", "")
    member_id = int(member_raw) if member_raw.isdigit() and members and int(member_raw) in dict(members) else None
    page_raw = params.get("page", "1")
    page = changelog.page_of(ctx.db, organisation_ids, page=int(page_raw) if page_raw.isdigit() else 1,
                             kind=kind, member_id=member_id)
    filters = {k: v for k, v in (("kind", kind), ("member", str(member_id) if member_id else None)) if v}
    return ctx.render("audit_log.html", cell=cell, org=org, log=page, chain=chain_status(ctx),
                      kinds=changelog.KINDS, kind=kind, members=members or [], member_id=member_id,
                      filters=filters, query=urlencode(filters))


@view()
def org_log(ctx: Ctx) -> Response:
    org = _org_for_audit(ctx)
    if org.kind == OrgKind.CELL:
        return RedirectResponse(f"/cells/{org.id}/log" + (f"?{ctx.request.url.query}" if ctx.request.url.query
                                                          else ""), status_code=303)
    ids = [o.id for o in organisations.subtree(ctx.db, org)]
    return log_page(ctx, ids, org=org)


routes = [
    Route("/orgs/{org_id:int}/audit", org_audit, name="org_audit"),
    Route("/orgs/{org_id:int}/audit.csv", audit_csv, name="audit_csv"),
    Route("/orgs/{org_id:int}/audit.xlsx", audit_xlsx, name="audit_xlsx"),
    Route("/orgs/{org_id:int}/evaluation-policy", evaluation_policy, methods=["POST"], name="evaluation_policy"),
    Route("/orgs/{org_id:int}/log", org_log, name="org_log"),
    Route("/cells/{cell_id:int}/audit", cell_audit, name="cell_audit"),
]
