"""The request → domain bridge used by every page.

``@view`` turns a plain function ``fn(ctx) -> Response`` into a Starlette endpoint that:
reads and CSRF-checks the form of unsafe requests, loads the account and its scope, runs
``fn`` in a worker thread with a database session (the event loop keeps serving WebSockets),
commits when the response is a success and rolls back otherwise, and maps domain errors to
Vietnamese error pages. A 4xx or 5xx response never commits anything.

A view behind the login (``@view()``, the default) gets a :class:`Ctx`, whose ``account``
and ``scope`` are always there; a public one (``@view(login=False)``: the login page, the
calendar feed) gets a :class:`PublicCtx`, where both are None for a visitor.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload
from urllib.parse import quote, urlsplit

import anyio.to_thread
from sqlalchemy.orm import Session
from starlette.background import BackgroundTasks
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ, MAX_ID, unit_of_work
from meetings.foundation.errors import Conflict, DomainError, Forbidden, NotFound
from meetings.organisation import sessions
from meetings.organisation.accounts import Account
from meetings.organisation.scoping import Scope, scope_for
from meetings.organisation.sessions import LoginRef

from . import sessions as login_sessions
from .room_closing import end_rooms, take_ended

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: Largest accepted form body part (uploads set their own limits on top).
MAX_PART_SIZE = 5 * 1024 * 1024


class CsrfFailed(Exception):
    pass


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(raw: object) -> int | None:
    """A database id as typed in a path or a form field: ASCII digits within BIGINT, or None.
    (``str.isdigit`` also accepts "²" and other digits ``int`` refuses.)"""
    text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after a form (login, the calendar feed, ...): a path on this site, never
    another site (security finding 12.9, open redirect). Browsers read a backslash as a
    slash and drop tabs and newlines, so ``/<backslash>evil`` and ``/<tab>/evil`` would be
    ``//evil``: backslashes and control characters are refused too."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass
class PublicCtx:
    """What a view gets: the request, its database session, the parsed form and the clock.
    ``account`` and ``scope`` are None for a visitor who is not logged in."""

    request: Request
    db: Session
    account: Account | None
    scope: Scope | None
    form: FormData | None
    now: dt.datetime
    flashes: list[tuple[str, str]] = field(default_factory=list)
    #: The parsed body of a JSON request (autosave and other scripts).
    json: Any = None

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(LOCAL_TZ).date()

    @property
    def login(self) -> LoginRef | None:
        """The login session this request came with (None when anonymous)."""
        return login_sessions.current(self.request)

    def log_in(self, account: Account) -> None:
        """Open a new server-side session for the account; the response sets its cookie.
        Whatever the visitor had in their anonymous session (its CSRF token) is left behind."""
        if self.login is not None:  # someone else logs in on this browser: the old session is over
            old = self.db.get(sessions.LoginSession, self.login.session_id)
            if old is not None:
                sessions.end(old, sessions.EndReason.LOGOUT, self.now)
                self.sessions_ended(old.account_id)
        row, key = sessions.start(self.db, account.id, now=self.now, address=client_address(self.request),
                                  user_agent=self.request.headers.get("user-agent", ""))
        self.request.session.clear()
        login_sessions.begin(self.request, key, row.id)

    def log_out(self) -> None:
        """End this request's session everywhere (its room WebSockets too)."""
        ref = self.login
        if ref is not None:
            row = self.db.get(sessions.LoginSession, ref.session_id)
            if row is not None:
                sessions.end(row, sessions.EndReason.LOGOUT, self.now)
            self.sessions_ended(ref.account_id)
        self.request.session.clear()
        login_sessions.finish(self.request)

    def sessions_ended(self, account_id: int) -> None:
        """Some sessions of this account ended in this request: once it commits, their open
        room WebSockets are closed, on whichever server process they are."""
        self.request.state.ended_sessions = {*getattr(self.request.state, "ended_sessions", set()), account_id}

    @property
    def actor(self) -> Actor:
        assert self.account is not None, "actor needs a logged-in account"
        return Actor(self.account.id, self.account.display_name, client_address(self.request))

    def path_int(self, name: str) -> int:
        value = parse_id(self.request.path_params.get(name))
        if value is None:
            raise NotFound()
        return value

    def field_id(self, name: str) -> int | None:
        """A form field naming an object by id (a member, an agenda item); None if empty or bad."""
        return parse_id(self.field(name).strip())

    def field(self, name: str, default: str = "") -> str:
        if self.form is None:
            return default
        value = self.form.get(name, default)
        return value if isinstance(value, str) else default

    def file(self, name: str) -> UploadFile | None:
        if self.form is None:
            return None
        value = self.form.get(name)
        return value if isinstance(value, UploadFile) else None

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("today", self.today)
        return render(self.request, template, status_code=status_code, account=self.account,
                      scope=self.scope, **context)

    def redirect(self, url: str, flash: str | None = None, level: str = "success") -> RedirectResponse:
        if flash:
            self.flash(flash, level)
        return RedirectResponse(url, status_code=303)

    def flash(self, message: str, level: str = "success") -> None:
        self.request.session.setdefault("flash", []).append([level, message])


@dataclass
class Ctx(PublicCtx):
    """A view behind the login: the account and what it may see are always there."""

    account: Account
    scope: Scope


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    env = request.app.state.templates
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    html = env.get_template(template).render(
        request=request,
        csrf_token=csrf_token(request) if "session" in request.scope else "",
        flashes=flashes,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, message: str | None = None) -> HTMLResponse:
    titles = {
        400: "Yêu cầu không hợp lệ",
        403: "Không có quyền truy cập",
        404: "Không tìm thấy trang",
        405: "Phương thức không được hỗ trợ",
        409: "Dữ liệu bị trùng",
        413: "Tệp hoặc dữ liệu gửi lên quá lớn",
        422: "Dữ liệu không hợp lệ",
        429: "Quá nhiều yêu cầu",
        500: "Lỗi hệ thống",
    }
    default_messages = {
        403: "Bạn không có quyền xem hoặc thay đổi nội dung này.",
        404: "Trang bạn tìm không tồn tại hoặc bạn không có quyền xem.",
        500: "Đã có lỗi xảy ra phía máy chủ. Dữ liệu đã lưu trước đó không bị ảnh hưởng. "
        "Vui lòng thử lại sau ít phút.",
    }
    return render(
        request,
        "error.html",
        status_code=status_code,
        title=titles.get(status_code, "Có lỗi xảy ra"),
        message=message or default_messages.get(status_code, ""),
        status=status_code,
        account=None,
    )


def status_for(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, Conflict):
        return 409
    return 400


MAX_JSON_BYTES = 512 * 1024


async def read_form(request: Request) -> tuple[FormData | None, Any]:
    """Parse the body of an unsafe request and check its CSRF token (403 when wrong).
    Returns the form, or the decoded JSON for ``application/json`` requests."""
    if request.method in SAFE_METHODS:
        return None, None
    content_type = request.headers.get("content-type", "")
    form: FormData | None = None
    body: Any = None
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_files=5, max_fields=500, max_part_size=MAX_PART_SIZE)
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or (form.get(CSRF_FIELD) if form is not None else None)
    if not expected or not isinstance(given, str) or not secrets.compare_digest(given, str(expected)):
        raise CsrfFailed()
    if content_type.startswith("application/json"):
        raw = await request.body()
        if len(raw) > MAX_JSON_BYTES:
            raise ValueError("body size over the limit")
        try:
            body = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            raise ValueError("malformed JSON") from None
        if json_depth(body) > MAX_JSON_DEPTH:
            raise ValueError("JSON nested too deeply")
    return form, body


#: No page's script sends JSON nested deeper than this (the minutes draft is about 5 deep).
MAX_JSON_DEPTH = 32


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest, counted without recursion (finding 12.8: a
    100,000-deep body must be a 400, not a crash)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def load_account(db: Session, request: Request, now: dt.datetime) -> Account | None:
    """The account of the request's live login session (app/sessions.py found it, or left it
    to this transaction on a deferred route)."""
    ref = login_sessions.current(request) or login_sessions.open_deferred(db, request.scope, now,
                                                                         request.app.state.session_limits)
    if ref is None:
        return None
    account = db.get(Account, ref.account_id)
    if account is None or not account.is_active:
        return None
    return account


Endpoint = Callable[[Request], Any]

#: The endpoints made by ``@view(upload=True)``.
_UPLOAD_VIEWS: set[Endpoint] = set()


def takes_upload(endpoint: object) -> bool:
    """Whether the endpoint's form may carry files, so its body may reach UPLOAD_MAX_BYTES."""
    return endpoint in _UPLOAD_VIEWS


@overload
def view(*, login: Literal[True] = True, allow_password_change_pending: bool = False,
         upload: bool = False) -> Callable[[Callable[[Ctx], Response]], Endpoint]: ...
@overload
def view(*, login: Literal[False], allow_password_change_pending: bool = False,
         upload: bool = False) -> Callable[[Callable[[PublicCtx], Response]], Endpoint]: ...


def view(*, login: bool = True, allow_password_change_pending: bool = False,
         upload: bool = False) -> Callable[[Callable[[Any], Response]], Endpoint]:
    """``login``: anonymous visitors are sent to the login page, and the view gets a
    :class:`Ctx`; ``login=False`` views get a :class:`PublicCtx`.
    ``upload``: the form carries files, so its body may reach UPLOAD_MAX_BYTES (app/limits.py)."""

    def decorate(fn: Callable[[Any], Response]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                form, body = await read_form(request)
            except CsrfFailed:
                return error_page(
                    request, 403,
                    "Biểu mẫu không hợp lệ hoặc phiên làm việc đã hết hạn (thiếu mã bảo vệ CSRF). "
                    "Hãy tải lại trang rồi gửi lại.",
                )
            except ValueError as exc:  # multipart limits exceeded, malformed body
                return error_page(request, 413 if "size" in str(exc).lower() else 400,
                                  "Dữ liệu gửi lên không hợp lệ hoặc quá lớn.")
            try:
                response = await anyio.to_thread.run_sync(_run, fn, request, form, body, login,
                                                          allow_password_change_pending)
                return await _after_commit(request, response)
            except DomainError as exc:
                return error_page(request, status_for(exc), exc.message)
            finally:
                if form is not None:
                    await form.close()  # uploaded files are spooled to temporary files

        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        if upload:
            _UPLOAD_VIEWS.add(endpoint)
        return endpoint

    return decorate


async def _after_commit(request: Request, response: Response) -> Response:
    """Work that must follow a committed transaction: the room sockets of sessions it ended
    close at once (on every server process), and rooms of meetings it closed end."""
    sessions = getattr(request.state, "ended_sessions", None)
    if sessions and response.status_code < 400:
        await request.app.state.rooms.sessions_ended(sorted(sessions))
    ended = getattr(request.state, "ended_meetings", None)
    if ended:
        tasks = BackgroundTasks([response.background] if response.background is not None else [])
        tasks.add_task(end_rooms, request.app.state, ended)
        response.background = tasks
    return response


def _run(fn: Callable[[Any], Response], request: Request, form: FormData | None, body: Any, login: bool,
         allow_pending: bool) -> Response:
    with unit_of_work(request.app.state.db.sessions) as db:
        response = _respond(fn, db, request, form, body, login, allow_pending)
        if response.status_code >= 400:
            db.rollback()  # a failed request keeps nothing
    ended = take_ended(db)  # committed now: the rooms of the meetings it closed may end
    if response.status_code < 400:
        request.state.ended_meetings = ended
    return response


def _respond(fn: Callable[[Any], Response], db: Session, request: Request, form: FormData | None, body: Any,
             login: bool, allow_pending: bool) -> Response:
    now = request.app.state.clock()
    account = load_account(db, request, now)
    if login and account is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    if account is not None and account.must_change_password and not allow_pending:
        return RedirectResponse("/password", status_code=303)
    request.state.account_id = account.id if account else None
    ctx: PublicCtx
    if account is not None:
        scope = scope_for(db, account, now.astimezone(LOCAL_TZ).date())
        ctx = Ctx(request=request, db=db, account=account, scope=scope, form=form, now=now, json=body)
    else:
        ctx = PublicCtx(request=request, db=db, account=None, scope=None, form=form, now=now, json=body)
    return fn(ctx)
