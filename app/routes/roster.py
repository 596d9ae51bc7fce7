"""Cell rosters: members, their periods, CSV import and member accounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from meetings.foundation import audit
from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import DomainError, Forbidden, ValidationError
from meetings.foundation.text import name_sort_key, parse_date
from meetings.organisation import (
    accounts,
    eligibility,
    member_import,
    members,
    organisations,
    scoping,
)
from meetings.organisation.accounts import Account, Role
from meetings.organisation.members import (
    ExemptKind,
    Member,
    MemberInput,
    MemberPeriod,
    PeriodInput,
    PeriodKind,
)
from meetings.organisation.organisations import Organisation
from meetings.planning import notices

from ..web import Ctx, view
from . import schedule
from .audit import log_page
from .sessions import may_revoke

MEMBER_FORM_FIELDS = (
    "full_name", "birth_date", "card_number", "admitted_on", "status",
    "probation_ends_on", "official_on", "phone", "email",
)
PERIOD_FORM_FIELDS = (
    "start_on", "end_on", "place", "host_org_name", "host_contact", "expected_return_on",
    "decision_number", "reason", "exempt_kind", "note",
)


def _member_input(ctx: Ctx) -> MemberInput:
    return MemberInput(**{name: ctx.field(name) for name in MEMBER_FORM_FIELDS})


def _member_values(member: Member) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in MEMBER_FORM_FIELDS:
        value = getattr(member, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif hasattr(value, "value"):
            value = value.value
        values[name] = value or ""
    return values


# --------------------------------------------------------------------------- cell roster


def phones_visible(ctx: Ctx, cell_id: int | None, people: Iterable[Member]) -> set[int]:
    """Whose phone numbers the viewer sees: their own, everyone's when they manage the cell
    (secretary, deputy, an admin above), and otherwise only those who agreed to share it
    with the cell (finding 12.10)."""
    manages = ctx.scope.can_manage(cell_id)
    return {m.id for m in people if manages or m.phone_shared or m.id == ctx.scope.member_id}


@view()
def cell_page(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    electorate = eligibility.electorate(ctx.db, cell.id, ctx.today)
    ids = [e.member_id for e in electorate]
    periods = members.current_periods(ctx.db, ids, ctx.today)
    people = {m.id: m for m in ctx.db.scalars(select(Member).where(Member.id.in_(ids)))} if ids else {}
    with_accounts = set(ctx.db.scalars(select(Account.member_id).where(Account.member_id.in_(ids)))) if ids else set()
    return ctx.render(
        "cell.html",
        cell=cell,
        breadcrumb=[o for o in organisations.ancestors(ctx.db, cell) if ctx.scope.can_read(o.id)],
        home=[e for e in electorate if e.in_roll],
        attached=[e for e in electorate if not e.in_roll],
        counts=electorate.counts(),
        periods=periods,
        people=people,
        with_accounts=with_accounts,
        phones=phones_visible(ctx, cell.id, people.values()),
        can_manage=ctx.scope.can_manage(cell.id),
        can_audit=ctx.scope.can_audit(cell.id),
        schedule=schedule.cell_summary(ctx, cell),
    )


@view()
def member_new(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"), manage=True)
    if ctx.request.method == "GET":
        return ctx.render("member_form.html", cell=cell, member=None, values={"status": "official"})
    values = {name: ctx.field(name) for name in MEMBER_FORM_FIELDS}
    try:
        member = members.create_member(ctx.db, ctx.actor, cell, _member_input(ctx), today=ctx.today)
    except DomainError as exc:
        return ctx.render("member_form.html", status_code=400, cell=cell, member=None, values=values,
                          error=exc.message)
    return ctx.redirect(f"/members/{member.id}", f"Đã thêm đảng viên {member.full_name}.")


@view()
def attached_new(ctx: Ctx) -> Response:
    """Attach a member from an organisation that is not on the platform (sinh hoạt tạm thời)."""
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"), manage=True)
    if ctx.request.method == "GET":
        return ctx.render("attached_form.html", cell=cell, values={"status": "official"})
    values = {name: ctx.field(name) for name in (*MEMBER_FORM_FIELDS, "home_org_name", "start_on", "end_on")}
    try:
        start = parse_date(ctx.field("start_on"), label="Sinh hoạt tạm thời từ ngày")
        end = parse_date(ctx.field("end_on"), label="Đến ngày", required=False)
        assert start is not None
        member = members.create_attached_member(
            ctx.db, ctx.actor, cell, _member_input(ctx), home_org_name=ctx.field("home_org_name"),
            start_on=start, end_on=end, today=ctx.today,
        )
    except DomainError as exc:
        return ctx.render("attached_form.html", status_code=400, cell=cell, values=values, error=exc.message)
    return ctx.redirect(f"/members/{member.id}", f"Đã thêm {member.full_name} sinh hoạt tạm thời tại chi bộ.")


@view(upload=True)
def import_page(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"), manage=True)
    context: dict[str, Any] = {"cell": cell, "columns": member_import.COLUMNS,
                               "required": member_import.REQUIRED_COLUMNS}
    if ctx.request.method == "GET":
        return ctx.render("import.html", **context)
    upload = ctx.file("file")
    if upload is None or not upload.filename:
        return ctx.render("import.html", status_code=400, error="Hãy chọn tệp CSV để nhập.", **context)
    data = upload.file.read(member_import.MAX_BYTES + 1)
    try:
        created = member_import.import_members(ctx.db, ctx.actor, cell, data, ctx.today)
    except member_import.ImportFailed as exc:
        return ctx.render("import.html", status_code=422, error=exc.message, line_errors=exc.errors,
                          filename=upload.filename, **context)
    except DomainError as exc:
        return ctx.render("import.html", status_code=400, error=exc.message, **context)
    return ctx.redirect(f"/cells/{cell.id}", f"Đã nhập {len(created)} đảng viên từ tệp {upload.filename}.")


@view()
def import_template(ctx: Ctx) -> Response:
    scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"), manage=True)
    return Response(
        member_import.template_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="mau-danh-sach-dang-vien.csv"'},
    )


@view()
def cell_log(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    if not ctx.scope.can_audit(cell.id):
        raise Forbidden("Chỉ bí thư chi bộ và cấp ủy cấp trên được xem nhật ký thay đổi.")
    roll = eligibility.electorate(ctx.db, cell.id, ctx.today)
    members = sorted(((e.member_id, e.full_name) for e in roll), key=lambda m: name_sort_key(m[1]))
    return log_page(ctx, [cell.id], cell=cell, members=members)


# --------------------------------------------------------------------------- members


@view()
def member_page(ctx: Ctx) -> Response:
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today)
    cells = scoping.member_cells(ctx.db, member, ctx.today)
    managing = {member.home_cell_id} if member.home_cell_id else cells
    can_manage = any(ctx.scope.can_manage(c) for c in managing)
    private = can_manage or ctx.scope.member_id == member.id or any(ctx.scope.can_audit(c) for c in cells)
    home_cell = ctx.db.get(Organisation, member.home_cell_id) if member.home_cell_id else None
    periods = members.periods_of(ctx.db, member.id)
    host_cells = {p.host_cell_id: ctx.db.get(Organisation, p.host_cell_id) for p in periods if p.host_cell_id}
    account = accounts.account_for_member(ctx.db, member.id)
    return ctx.render(
        "member.html",
        member=member,
        home_cell=home_cell,
        periods=periods,
        host_cells=host_cells,
        standing=eligibility.electorate(ctx.db, member.home_cell_id, ctx.today).get(member.id)
        if member.home_cell_id else None,
        member_account=account,
        can_reset=account is not None and can_manage
        and accounts.holds_all_roles_of(ctx.db, ctx.scope.account_id, account),
        can_manage=can_manage,
        show_phone=member.phone_shared or ctx.scope.member_id == member.id
        or any(ctx.scope.can_manage(c) for c in cells),
        can_revoke=account is not None and may_revoke(ctx, account),
        private=private,
        today=ctx.today,
        kinds=list(PeriodKind),
    )


@view()
def phone_sharing(ctx: Ctx) -> Response:
    """A member agrees (or no longer agrees) that every cell-mate may see their phone number."""
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today)
    if ctx.scope.member_id != member.id:
        raise Forbidden("Chỉ chính đảng viên đó quyết định việc chia sẻ số điện thoại của mình.")
    shared = ctx.field("shared") == "1"
    if member.phone_shared != shared:
        audit.record(ctx.db, ctx.actor, "member.phone_sharing", member, {"phone_shared": member.phone_shared},
                     {"phone_shared": shared}, organisation_id=member.home_cell_id)
        member.phone_shared = shared
    return ctx.redirect(f"/members/{member.id}", "Các đồng chí trong chi bộ nay thấy số điện thoại của đồng chí."
                        if shared else "Số điện thoại của đồng chí nay chỉ bí thư, phó bí thư chi bộ thấy.")


@view()
def member_edit(ctx: Ctx) -> Response:
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today, manage=True)
    cell = ctx.db.get(Organisation, member.home_cell_id) if member.home_cell_id else None
    if ctx.request.method == "GET":
        return ctx.render("member_form.html", cell=cell, member=member, values=_member_values(member))
    values = {name: ctx.field(name) for name in MEMBER_FORM_FIELDS}
    try:
        members.update_member(ctx.db, ctx.actor, member, _member_input(ctx), today=ctx.today)
    except DomainError as exc:
        return ctx.render("member_form.html", status_code=400, cell=cell, member=member, values=values,
                          error=exc.message)
    return ctx.redirect(f"/members/{member.id}", "Đã lưu thông tin đảng viên.")


def _period_input(ctx: Ctx, kind: PeriodKind) -> PeriodInput:
    f = ctx.field
    return PeriodInput(kind=kind, start_on=f("start_on"), end_on=f("end_on"), place=f("place"),
                       host_org_name=f("host_org_name"), host_contact=f("host_contact"),
                       expected_return_on=f("expected_return_on"), decision_number=f("decision_number"),
                       reason=f("reason"), exempt_kind=f("exempt_kind") or None, note=f("note"))


def _kind_from(ctx: Ctx) -> PeriodKind:
    raw = ctx.field("kind") or ctx.request.query_params.get("kind", "") or PeriodKind.AWAY.value
    try:
        return PeriodKind(raw)
    except ValueError:
        raise ValidationError("Loại giai đoạn không hợp lệ.") from None


@view()
def period_new(ctx: Ctx) -> Response:
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today, manage=True)
    kind = _kind_from(ctx)
    context: dict[str, Any] = {"member": member, "period": None, "kind": kind, "exempt_kinds": list(ExemptKind)}
    if ctx.request.method == "GET":
        return ctx.render("period_form.html", values={"start_on": ctx.today.isoformat()}, **context)
    values = {name: ctx.field(name) for name in PERIOD_FORM_FIELDS}
    try:
        members.add_period(ctx.db, ctx.actor, member, _period_input(ctx, kind))
    except DomainError as exc:
        return ctx.render("period_form.html", status_code=400, values=values, error=exc.message, **context)
    return ctx.redirect(f"/members/{member.id}", f"Đã thêm giai đoạn “{kind.label}”.")


def _period_values(period: MemberPeriod) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in PERIOD_FORM_FIELDS:
        value = getattr(period, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif hasattr(value, "value"):
            value = value.value
        values[name] = value or ""
    return values


@view()
def period_edit(ctx: Ctx) -> Response:
    period = members.get_period(ctx.db, ctx.path_int("period_id"))
    member = scoping.access_member(ctx.db, ctx.scope, period.member_id, ctx.today, manage=True)
    context: dict[str, Any] = {"member": member, "period": period, "kind": period.kind,
                               "exempt_kinds": list(ExemptKind)}
    if ctx.request.method == "GET":
        return ctx.render("period_form.html", values=_period_values(period), **context)
    values = {name: ctx.field(name) for name in PERIOD_FORM_FIELDS}
    try:
        members.update_period(ctx.db, ctx.actor, period, _period_input(ctx, period.kind))
    except DomainError as exc:
        return ctx.render("period_form.html", status_code=400, values=values, error=exc.message, **context)
    return ctx.redirect(f"/members/{member.id}", "Đã lưu giai đoạn.")


@view()
def period_delete(ctx: Ctx) -> Response:
    period = members.get_period(ctx.db, ctx.path_int("period_id"))
    member = scoping.access_member(ctx.db, ctx.scope, period.member_id, ctx.today, manage=True)
    members.delete_period(ctx.db, ctx.actor, period)
    return ctx.redirect(f"/members/{member.id}", "Đã xóa giai đoạn (vẫn lưu trong nhật ký thay đổi).")


@view()
def member_account(ctx: Ctx) -> Response:
    """Create the member's account (or reset its password) with a one-time password."""
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today, manage=True)
    cell_id = member.home_cell_id or next(iter(scoping.member_cells(ctx.db, member, ctx.today)), None)
    existing = accounts.account_for_member(ctx.db, member.id)
    if existing is not None:
        password = accounts.reset_password(ctx.db, ctx.actor, existing, cell_id, now=ctx.now)
        ctx.sessions_ended(existing.id)
        account = existing
        when = ctx.now.astimezone(LOCAL_TZ).strftime("%H:%M ngày %d/%m/%Y")
        notices.tell_account_owner(
            ctx.db, account, event="password_reset", now=ctx.now, url="/password",
            subject="Mật khẩu tài khoản của đồng chí đã được cấp lại",
            body=(f"Lúc {when}, {ctx.actor.label} đã cấp lại mật khẩu tạm cho tài khoản "
                  f"“{account.username}”. Mọi phiên đăng nhập cũ đã kết thúc. Nếu đồng chí không "
                  "đề nghị việc này, hãy báo ngay cho bí thư chi bộ hoặc cấp ủy cấp trên."),
        )
    else:
        password = accounts.generate_password()
        username = ctx.field("username") or (member.card_number or f"dv{member.id}")
        try:
            account = accounts.create_account(
                ctx.db, ctx.actor, username=username, password=password, display_name=member.full_name,
                member=member, must_change_password=True, organisation_id=cell_id,
            )
        except DomainError as exc:
            return ctx.render("error.html", status_code=400, title="Không tạo được tài khoản",
                              message=exc.message, status=400)
        if cell_id is not None:
            cell = ctx.db.get(Organisation, cell_id)
            accounts.grant_role(ctx.db, ctx.actor, account, Role.MEMBER, cell)
    return ctx.render("account_created.html", member=member, username=account.username, password=password,
                      reset=existing is not None)


routes = [
    Route("/cells/{cell_id:int}", cell_page, name="cell"),
    Route("/cells/{cell_id:int}/members/new", member_new, methods=["GET", "POST"], name="member_new"),
    Route("/cells/{cell_id:int}/attached/new", attached_new, methods=["GET", "POST"], name="attached_new"),
    Route("/cells/{cell_id:int}/import", import_page, methods=["GET", "POST"], name="import"),
    Route("/cells/{cell_id:int}/import/template.csv", import_template, name="import_template"),
    Route("/cells/{cell_id:int}/log", cell_log, name="cell_log"),
    Route("/members/{member_id:int}", member_page, name="member"),
    Route("/members/{member_id:int}/edit", member_edit, methods=["GET", "POST"], name="member_edit"),
    Route("/members/{member_id:int}/periods/new", period_new, methods=["GET", "POST"], name="period_new"),
    Route("/members/{member_id:int}/account", member_account, methods=["POST"], name="member_account"),
    Route("/members/{member_id:int}/phone-sharing", phone_sharing, methods=["POST"], name="phone_sharing"),
    Route("/periods/{period_id:int}/edit", period_edit, methods=["GET", "POST"], name="period_edit"),
    Route("/periods/{period_id:int}/delete", period_delete, methods=["POST"], name="period_delete"),
]
