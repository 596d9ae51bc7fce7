"""Login, logout and password change."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meetings import accounts
from meetings.errors import DomainError, ValidationError

from ..web import Ctx, client_address, view
from .room import ROOM_MODULES

_ROOM_PAGE = re.compile(r"/meetings/\d+/room(\?.*)?")


def _prefetch_for(next_url: str) -> list[str]:
    """Static files the page after the login needs: the browser fetches them (into its
    cache, where versioned URLs stay valid) while the member types the password. On a
    300 ms link that is most of the meeting room's load time off the wait after "Đăng nhập"."""
    if _ROOM_PAGE.fullmatch(next_url):
        return ["room/room.css", *(f"room/{module}" for module in ROOM_MODULES)]
    return []


def _safe_next(target: str) -> str:
    """Only same-site paths: never redirect a fresh login to another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@view(login=False)
def login(ctx: Ctx) -> Response:
    next_url = _safe_next(ctx.request.query_params.get("next", "/"))
    if ctx.request.method == "GET":
        if ctx.account is not None:
            return RedirectResponse(next_url, status_code=303)
        return ctx.render("login.html", next_url=next_url, username="", prefetch=_prefetch_for(next_url))
    username = ctx.field("username")
    try:
        account = accounts.authenticate(ctx.db, username, ctx.field("password"),
                                        client_address(ctx.request), ctx.now)
    except accounts.LoginThrottled as exc:
        # Record nothing new, but keep failures already counted (commit below).
        ctx.db.commit()
        return ctx.render("login.html", status_code=429, error=exc.message, next_url=next_url, username=username)
    except accounts.InvalidCredentials as exc:
        ctx.db.commit()  # the failure must be stored for throttling
        return ctx.render("login.html", status_code=401, error=exc.message, next_url=next_url, username=username)
    session = ctx.request.session
    session.clear()
    session["aid"] = account.id
    session["ep"] = account.session_epoch
    if account.must_change_password:
        return ctx.redirect("/password", "Đây là lần đăng nhập đầu tiên: vui lòng đặt mật khẩu mới.", "info")
    return RedirectResponse(next_url, status_code=303)


@view(login=False)
def logout(ctx: Ctx) -> Response:
    ctx.request.session.clear()
    return ctx.redirect("/login", "Bạn đã đăng xuất.", "info")


@view(allow_password_change_pending=True)
def password(ctx: Ctx) -> Response:
    assert ctx.account is not None
    if ctx.request.method == "GET":
        return ctx.render("password.html", forced=ctx.account.must_change_password)
    try:
        accounts.change_password(ctx.db, ctx.account, ctx.field("current"), ctx.field("password"),
                                 ctx.field("confirm"))
    except ValidationError as exc:
        return ctx.render("password.html", status_code=400, error=exc.message,
                          forced=ctx.account.must_change_password)
    except DomainError as exc:
        return ctx.render("password.html", status_code=400, error=exc.message, forced=False)
    # Other sessions of this account end (epoch bumped); keep this one.
    ctx.request.session["ep"] = ctx.account.session_epoch
    return ctx.redirect("/", "Đã đổi mật khẩu.")


routes = [
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/password", password, methods=["GET", "POST"], name="password"),
]
