"""Login sessions: an account sees and ends its own; an admin ends someone else's (finding 12.2)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from meetings.foundation import audit
from meetings.foundation.errors import Forbidden, NotFound
from meetings.organisation import accounts, sessions
from meetings.organisation.accounts import Account, Role
from meetings.organisation.sessions import EndReason, LoginSession

from ..web import Ctx, view


def _limits(ctx: Ctx) -> sessions.SessionLimits:
    limits: sessions.SessionLimits = ctx.request.app.state.session_limits
    return limits


def _rows(ctx: Ctx, account: Account) -> list[dict[str, object]]:
    current = ctx.login.session_id if ctx.login else None
    return [{"row": row, "device": sessions.device_label(row.user_agent), "current": row.id == current}
            for row in sessions.sessions_of(ctx.db, account.id, now=ctx.now, limits=_limits(ctx))]


@view()
def my_sessions(ctx: Ctx) -> Response:
    return ctx.render("sessions.html", rows=_rows(ctx, ctx.account), owner=ctx.account, own=True,
                      limits=_limits(ctx))


@view()
def end_my_session(ctx: Ctx) -> Response:
    """End one of one's own sessions (a phone left logged in somewhere)."""
    row = ctx.db.get(LoginSession, ctx.path_int("session_id"))
    if row is None or row.account_id != ctx.account.id or row.ended_at is not None:
        raise NotFound("Không tìm thấy phiên đăng nhập này (có thể đã kết thúc).")
    if ctx.login is not None and row.id == ctx.login.session_id:
        ctx.log_out()
        return ctx.redirect("/login", "Đã kết thúc phiên đăng nhập này.", "info")
    sessions.end(row, EndReason.ENDED_BY_OWNER, ctx.now)
    ctx.sessions_ended(ctx.account.id)
    return ctx.redirect("/sessions", "Đã kết thúc phiên đăng nhập; thiết bị đó phải đăng nhập lại.")


@view()
def end_my_other_sessions(ctx: Ctx) -> Response:
    count = sessions.end_all(ctx.db, ctx.account.id, EndReason.ENDED_BY_OWNER, ctx.now,
                             keep=ctx.login.session_id if ctx.login else None)
    ctx.sessions_ended(ctx.account.id)
    return ctx.redirect("/sessions", f"Đã kết thúc {count} phiên đăng nhập khác.")


def may_revoke(ctx: Ctx, target: Account) -> bool:
    """May this admin end the target's sessions? Their admin grants must cover every
    organisation the target holds a role on (an admin of one commune is no admin elsewhere,
    even if they are a secretary there), and they must hold every role the target holds
    (the rule of the password reset)."""
    if target.id == ctx.account.id or not any(r == Role.ADMIN for r, _ in ctx.scope.roles):
        return False
    grants = accounts.grants_of(ctx.db, target.id)
    if not grants and ctx.scope.administered is not None:
        return False
    for grant in grants:
        if grant.organisation_id is None and ctx.scope.administered is not None:
            return False
        if grant.organisation_id is not None and not ctx.scope.administers(grant.organisation_id):
            return False
    return accounts.holds_all_roles_of(ctx.db, ctx.account.id, target)


def _revocable(ctx: Ctx) -> Account:
    if not any(role == Role.ADMIN for role, _ in ctx.scope.roles):
        raise Forbidden("Chỉ quản trị được xem và kết thúc phiên đăng nhập của tài khoản khác.")
    target = ctx.db.get(Account, ctx.path_int("account_id"))
    if target is None:
        raise NotFound()
    if target.id == ctx.account.id:
        raise NotFound("Xem các phiên đăng nhập của chính mình ở trang “Phiên đăng nhập”.")
    if not may_revoke(ctx, target):
        raise Forbidden("Tài khoản này có vai trò hoặc phạm vi ngoài quyền quản trị của đồng chí: chỉ quản trị "
                        "cấp trên được kết thúc phiên đăng nhập của tài khoản này.")
    return target


@view()
def account_sessions(ctx: Ctx) -> Response:
    target = _revocable(ctx)
    return ctx.render("sessions.html", rows=_rows(ctx, target), owner=target, own=False, limits=_limits(ctx))


@view()
def revoke_account_sessions(ctx: Ctx) -> Response:
    target = _revocable(ctx)
    count = sessions.end_all(ctx.db, target.id, EndReason.REVOKED, ctx.now)
    audit.record(ctx.db, ctx.actor, "account.sessions_revoke", target, None, {"sessions_ended": count},
                 organisation_id=None)
    ctx.sessions_ended(target.id)
    return ctx.redirect(f"/accounts/{target.id}/sessions",
                        f"Đã kết thúc {count} phiên đăng nhập của tài khoản “{target.username}”.")


routes = [
    Route("/sessions", my_sessions, name="sessions"),
    Route("/sessions/{session_id:int}/end", end_my_session, methods=["POST"], name="session_end"),
    Route("/sessions/end-others", end_my_other_sessions, methods=["POST"], name="sessions_end_others"),
    Route("/accounts/{account_id:int}/sessions", account_sessions, name="account_sessions"),
    Route("/accounts/{account_id:int}/sessions/end", revoke_account_sessions, methods=["POST"],
          name="account_sessions_end"),
]
