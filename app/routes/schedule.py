"""A cell's schedule: rules, the generated meetings, online-pilot approval, compliance, feeds."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from meetings.foundation import audit
from meetings.foundation.errors import DomainError, Forbidden, NotFound, ValidationError
from meetings.foundation.text import parse_email
from meetings.organisation import organisations, scoping
from meetings.organisation.organisations import Organisation
from meetings.planning import calendars, compliance, pilot, schedules
from meetings.planning.meetings import MeetingKind
from meetings.planning.schedules import RuleInput, ThematicInput

from ..web import Ctx, PublicCtx, safe_next, view

RULE_FIELDS = ("pattern", "monthday", "ordinal", "weekday", "start_time", "duration_minutes", "place",
               "committee_days_before")
THEMATIC_FIELDS = ("mode", "month_of_quarter", "pattern", "monthday", "ordinal", "weekday", "start_time",
                   "duration_minutes", "place", "topic")


def cell_summary(ctx: Ctx, cell: Organisation) -> dict[str, Any]:
    """What the cell page shows about schedules and the online pilot."""
    return {
        "rules": schedules.active_rules(ctx.db, cell.id),
        "next_meetings": [m for m in schedules.upcoming(ctx.db, cell.id, ctx.now, past_days=0)][:3],
        "approval": pilot.current_approval(ctx.db, cell.id, ctx.today),
        "qualification": pilot.qualification(ctx.db, cell.id, ctx.today),
        "can_approve": scoping.can_approve_for(ctx.db, ctx.scope, cell),
    }


@view()
def schedule_page(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    meetings = schedules.upcoming(ctx.db, cell.id, ctx.now)
    member_feed = None
    if ctx.scope.member_id is not None:
        member_feed = calendars.active_feed(ctx.db, ctx.scope.member_id)
    return ctx.render(
        "schedule.html", cell=cell, meetings=meetings, now=ctx.now,
        breadcrumb=[o for o in organisations.ancestors(ctx.db, cell) if ctx.scope.can_read(o.id)],
        can_manage=ctx.scope.can_manage(cell.id), can_audit=ctx.scope.can_audit(cell.id),
        member_feed=member_feed, feed_url=ctx.request.session.pop("feed_url", None),
        **cell_summary(ctx, cell),
    )


def _rule_values(rule: schedules.MeetingRule | None, prefix: str = "") -> dict[str, Any]:
    if rule is None:
        return {}
    parts = schedules.rrule_parts(rule.rrule)
    values: dict[str, Any] = {
        f"{prefix}start_time": rule.start_time.strftime("%H:%M"),
        f"{prefix}duration_minutes": rule.duration_minutes,
        f"{prefix}place": rule.place or "",
    }
    if "BYMONTHDAY" in parts:
        values[f"{prefix}pattern"] = "monthday"
        values[f"{prefix}monthday"] = parts["BYMONTHDAY"].split(",")[0]
    elif "BYDAY" in parts:
        values[f"{prefix}pattern"] = "weekday"
        values[f"{prefix}ordinal"] = str(int(parts["BYDAY"][:-2] or "1"))
        values[f"{prefix}weekday"] = parts["BYDAY"][-2:]
    if rule.committee_days_before is not None:
        values["committee_days_before"] = rule.committee_days_before
    if prefix:
        values["t_mode"] = "combined" if rule.combined else "separate"
        values["t_topic"] = rule.topic or ""
        months = parts.get("BYMONTH", "3").split(",")
        values["t_month_of_quarter"] = str((int(months[0]) - 1) % 3 + 1)
    return values


@view()
def rules_page(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"), manage=True)
    rules = schedules.active_rules(ctx.db, cell.id)
    context: dict[str, Any] = {"cell": cell, "weekdays": schedules.WEEKDAYS, "ordinals": schedules.ORDINALS,
                               "rules": rules}
    if ctx.request.method == "GET":
        values = {"pattern": "monthday", "start_time": "19:30", "duration_minutes": 120, "t_mode": "combined",
                  "t_month_of_quarter": "3", "t_pattern": "monthday", "t_start_time": "19:30",
                  "t_duration_minutes": 120, "valid_from": ctx.today.isoformat(), "committee_days_before": 3}
        values.update(_rule_values(rules.get(MeetingKind.REGULAR)))
        values.update(_rule_values(rules.get(MeetingKind.THEMATIC), "t_"))
        return ctx.render("rules_form.html", values=values, **context)
    values = {name: ctx.field(name) for name in (*RULE_FIELDS, *(f"t_{n}" for n in THEMATIC_FIELDS), "valid_from")}
    regular = RuleInput(**{name: ctx.field(name) for name in RULE_FIELDS})
    thematic = ThematicInput(**{name: ctx.field(f"t_{name}") for name in THEMATIC_FIELDS})
    try:
        schedules.set_rules(ctx.db, ctx.actor, cell, regular, thematic, now=ctx.now,
                            valid_from=ctx.field("valid_from") or None)
    except DomainError as exc:
        return ctx.render("rules_form.html", status_code=400, values=values, error=exc.message, **context)
    return ctx.redirect(f"/cells/{cell.id}/schedule",
                        "Đã lưu lịch sinh hoạt; các cuộc họp 12 tháng tới đã được cập nhật.")


@view()
def meeting_new(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"), manage=True)
    kinds = [k for k in MeetingKind if k != MeetingKind.COMMITTEE or cell.has_committee]
    context: dict[str, Any] = {"cell": cell, "kinds": kinds}
    if ctx.request.method == "GET":
        return ctx.render("meeting_new.html", values={"kind": "extraordinary", "expected_minutes": 120,
                                                      "place": cell.address or ""}, **context)
    values = {n: ctx.field(n) for n in ("kind", "date", "time", "expected_minutes", "place", "topic", "title")}
    try:
        try:
            kind = MeetingKind(values["kind"])
        except ValueError:
            raise ValidationError("Loại cuộc họp không hợp lệ.") from None
        starts = schedules.parse_local_datetime(values["date"], values["time"], "Thời gian họp")
        meeting = schedules.create_adhoc(ctx.db, ctx.actor, cell, kind=kind, starts_at=starts, now=ctx.now,
                                         expected_minutes=values["expected_minutes"], place=values["place"],
                                         topic=values["topic"], title=values["title"])
    except DomainError as exc:
        return ctx.render("meeting_new.html", status_code=400, values=values, error=exc.message, **context)
    return ctx.redirect(f"/meetings/{meeting.id}", "Đã tạo cuộc họp.")


@view()
def pilot_page(ctx: Ctx) -> Response:
    """The cell's online-pilot approvals and duration override; recorded by the higher committee."""
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    context: dict[str, Any] = {
        "cell": cell, "approvals": pilot.approvals_of(ctx.db, cell.id),
        "qualification": pilot.qualification(ctx.db, cell.id, ctx.today),
        "can_approve": scoping.can_approve_for(ctx.db, ctx.scope, cell),
        "minimums": schedules.minimums(ctx.db, cell.id), "today": ctx.today,
        "committee": ctx.db.get(Organisation, cell.parent_id) if cell.parent_id else None,
    }
    if ctx.request.method == "GET":
        return ctx.render("pilot.html", values={"valid_from": ctx.today.isoformat()}, **context)
    scoping.access_cell_as_approver(ctx.db, ctx.scope, cell.id)
    values = {n: ctx.field(n) for n in ("action", "decision_number", "decided_on", "approving_body", "valid_from",
                                        "valid_to", "note", "min_regular", "min_combined", "basis")}
    try:
        if values["action"] == "minimums":
            schedules.set_minimums(ctx.db, ctx.actor, cell, values["min_regular"], values["min_combined"],
                                   values["basis"])
            message = "Đã lưu thời lượng tối thiểu riêng của chi bộ."
        else:
            committee = context["committee"]
            pilot.record_approval(
                ctx.db, ctx.actor, cell, decision_number=values["decision_number"], decided_on=values["decided_on"],
                approving_body=values["approving_body"] or (committee.name if committee else ""),
                approving_org_id=committee.id if committee else None, valid_from=values["valid_from"] or None,
                valid_to=values["valid_to"] or None, note=values["note"],
            )
            message = "Đã ghi nhận quyết định phê duyệt thí điểm sinh hoạt trực tuyến."
    except DomainError as exc:
        return ctx.render("pilot.html", status_code=400, values=values, error=exc.message, **context)
    return ctx.redirect(f"/cells/{cell.id}/pilot", message)


@view()
def compliance_page(ctx: Ctx) -> Response:
    cell = scoping.access_cell(ctx.db, ctx.scope, ctx.path_int("cell_id"))
    if not ctx.scope.can_audit(cell.id):
        raise Forbidden("Chỉ bí thư chi bộ và cấp ủy cấp trên xem được trang theo dõi nền nếp sinh hoạt.")
    raw = ctx.request.query_params.get("year", "")
    try:
        year = int(raw) if raw else ctx.today.year
    except ValueError:
        raise ValidationError("Năm không hợp lệ.") from None
    if not 2000 <= year <= 2100:
        raise ValidationError("Năm không hợp lệ.")
    report = compliance.for_cells(ctx.db, [cell], year, ctx.now)[cell.id]
    return ctx.render("compliance.html", cell=cell, report=report, year=year, today=ctx.today,
                      breadcrumb=[o for o in organisations.ancestors(ctx.db, cell) if ctx.scope.can_read(o.id)])


@view()
def calendar_feed_issue(ctx: Ctx) -> Response:
    """A member (re)creates the secret address of their own calendar feed."""
    member = scoping.access_member(ctx.db, ctx.scope, ctx.path_int("member_id"), ctx.today)
    if ctx.scope.member_id != member.id:
        raise Forbidden("Chỉ chính đảng viên được tạo đường dẫn lịch riêng của mình.")
    if ctx.field("action") == "revoke":
        calendars.revoke_feeds(ctx.db, member.id, ctx.now)
        return ctx.redirect(safe_next(ctx.field("next")), "Đã thu hồi đường dẫn lịch; đường dẫn cũ không còn dùng được.")
    token = calendars.issue_feed(ctx.db, member.id, ctx.now)
    base = str(ctx.request.app.state.settings.PUBLIC_URL).rstrip("/")
    ctx.request.session["feed_url"] = f"{base}/calendar/{token}.ics"
    return ctx.redirect(safe_next(ctx.field("next")),
                        "Đã tạo đường dẫn lịch riêng. Hãy sao chép ngay: vì an toàn, đường dẫn chỉ hiện một lần.")


@view(login=False)
def calendar_feed(ctx: PublicCtx) -> Response:
    token = str(ctx.request.path_params.get("token", ""))
    member = calendars.member_for_token(ctx.db, token)
    if member is None:
        raise NotFound("Đường dẫn lịch không đúng hoặc đã bị thu hồi.")
    base = str(ctx.request.app.state.settings.PUBLIC_URL)
    return Response(calendars.feed_ics(ctx.db, member, base, ctx.now), media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})


@view()
def organisation_email(ctx: Ctx) -> Response:
    """Where a committee receives the notices of its cells (admins of the subtree)."""
    org = scoping.access_organisation(ctx.db, ctx.scope, ctx.path_int("org_id"), manage=True)
    if org.is_cell or not ctx.scope.administers(org.id):
        raise Forbidden("Chỉ quản trị cấp ủy được đặt địa chỉ nhận thông báo.")
    before = {"email": org.email}
    org.email = parse_email(ctx.field("email"))
    audit.record(ctx.db, ctx.actor, "organisation.email", org, before, {"email": org.email})
    return ctx.redirect(f"/orgs/{org.id}", "Đã lưu địa chỉ nhận thông báo.")


routes = [
    Route("/cells/{cell_id:int}/schedule", schedule_page, name="schedule"),
    Route("/cells/{cell_id:int}/rules", rules_page, methods=["GET", "POST"], name="rules"),
    Route("/cells/{cell_id:int}/meetings/new", meeting_new, methods=["GET", "POST"], name="meeting_new"),
    Route("/cells/{cell_id:int}/pilot", pilot_page, methods=["GET", "POST"], name="pilot"),
    Route("/cells/{cell_id:int}/compliance", compliance_page, name="compliance"),
    Route("/members/{member_id:int}/calendar-feed", calendar_feed_issue, methods=["POST"], name="calendar_feed_issue"),
    Route("/calendar/{token}.ics", calendar_feed, name="calendar_feed"),
    Route("/orgs/{org_id:int}/email", organisation_email, methods=["POST"], name="organisation_email"),
]
