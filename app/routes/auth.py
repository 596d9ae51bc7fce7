"""Login, logout and password change."""

from __future__ import annotations

import re

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import DomainError, ValidationError
from meetings.organisation import accounts
from meetings.planning import notices

from ..web import Ctx, PublicCtx, client_address, safe_next, view
from .room import ROOM_MODULES

_ROOM_PAGE = re.compile(r"/meetings/\d+/room(\?.*)?")


def _prefetch_for(next_url: str) -> list[str]:
    """Static files the page after the login needs: the browser fetches them (into its
    cache, where versioned URLs stay valid) while the member types the password. On a
    300 ms link that is most of the meeting room's load time off the wait after "Đăng nhập"."""
    if _ROOM_PAGE.fullmatch(next_url):
        return ["room/room.css", *(f"room/{module}" for module in ROOM_MODULES)]
    return []



@view(login=False)
def login(ctx: PublicCtx) -> Response:
    next_url = safe_next(ctx.request.query_params.get("next", "/"))
    if ctx.request.method == "GET":
        if ctx.account is not None:
            return RedirectResponse(next_url, status_code=303)
        return ctx.render("login.html", next_url=next_url, username="", prefetch=_prefetch_for(next_url))
    username = ctx.field("username")
    try:
        account = accounts.authenticate(ctx.db, username, ctx.field("password"),
                                        client_address(ctx.request), ctx.now)
    except accounts.LoginThrottled as exc:
        # The password was not even checked; nothing new is recorded.
        page = ctx.render("login.html", status_code=429, error=exc.message, next_url=next_url, username=username)
        page.headers["Retry-After"] = str(max(1, int(exc.retry_after.total_seconds() + 0.999)))
        return page
    except accounts.LoginBusy as exc:
        page = ctx.render("login.html", status_code=503, error=exc.message, next_url=next_url, username=username)
        page.headers["Retry-After"] = "5"
        return page
    except accounts.InvalidCredentials as exc:
        if exc.tell_owner is not None:
            _tell_owner_of_guessing(ctx, exc.tell_owner)
        ctx.db.commit()  # the failure must be stored for throttling
        return ctx.render("login.html", status_code=401, error=exc.message, next_url=next_url, username=username)
    ctx.log_in(account)
    if account.must_change_password:
        return ctx.redirect("/password", "Đây là lần đăng nhập đầu tiên: vui lòng đặt mật khẩu mới.", "info")
    return RedirectResponse(next_url, status_code=303)


def _tell_owner_of_guessing(ctx: PublicCtx, account: accounts.Account) -> None:
    """Someone keeps typing wrong passwords for this account: its owner hears of it (the
    guesser is slowed down, the owner is not locked out)."""
    when = ctx.now.astimezone(LOCAL_TZ).strftime("%H:%M ngày %d/%m/%Y")
    notices.tell_account_owner(
        ctx.db, account, event="login_failures", now=ctx.now, url="/sessions",
        subject="Có người đăng nhập sai nhiều lần vào tài khoản của đồng chí",
        body=(f"Đến {when}, tài khoản “{account.username}” đã bị nhập sai mật khẩu "
              f"{accounts.ACCOUNT_BACKOFF.free} lần trong một giờ (lần gần nhất từ địa chỉ "
              f"{client_address(ctx.request)}). Hệ thống đã làm chậm các lần thử tiếp theo; đồng chí vẫn đăng "
              "nhập được bình thường. Nếu không phải đồng chí, hãy đổi mật khẩu và xem các phiên đăng nhập."),
    )


@view(login=False)
def logout(ctx: PublicCtx) -> Response:
    ctx.log_out()
    return ctx.redirect("/login", "Bạn đã đăng xuất.", "info")


@view(allow_password_change_pending=True)
def password(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return ctx.render("password.html", forced=ctx.account.must_change_password)
    try:
        accounts.change_password(ctx.db, ctx.account, ctx.field("current"), ctx.field("password"),
                                 ctx.field("confirm"), keep_session=ctx.login.session_id if ctx.login else None,
                                 now=ctx.now)
    except ValidationError as exc:
        return ctx.render("password.html", status_code=400, error=exc.message,
                          forced=ctx.account.must_change_password)
    except DomainError as exc:
        return ctx.render("password.html", status_code=400, error=exc.message, forced=False)
    # Every other session of this account has ended (their room WebSockets close); this one stays.
    ctx.sessions_ended(ctx.account.id)
    return ctx.redirect("/", "Đã đổi mật khẩu.")


routes = [
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/password", password, methods=["GET", "POST"], name="password"),
]
