"""Login sessions in the web layer: the cookie carries only an opaque key (finding 12.2).

``ServerSessionMiddleware`` runs for every HTTP request and WebSocket handshake:

* logged in: the ``chibo_session`` cookie holds a random key; the live session it opens
  (``meetings.sessions``) becomes ``scope["session"]`` (its data: CSRF token, one-time
  messages) and ``scope[SCOPE_KEY]`` (a ``LoginRef``). An ended, idle or expired session opens
  nothing, whatever the cookie's own expiry says.
* anonymous: the little the login form needs between two requests (its CSRF token, "you have
  logged out") travels in a signed ``chibo_anon`` cookie with no account in it, so that
  anonymous visitors create no rows.

At the start of the response it writes back what the request changed: the session's data, or
the anonymous cookie.

Deferred routes (``deferred``: the room's join-token route, called by every member of a
province at 19:30) skip all that: the middleware only hands the cookie's key on, and the view
opens the session in its own transaction (``open_deferred``) — one trip to a worker thread and
the database per request instead of two (bench/join.py). Such a route is a GET that changes no
session data; a stale cookie is not cleared there (the next page does it), and a refused
request (4xx: its transaction is rolled back) does not count as the session's use. The session cookie itself is set once, at login, with the session's
absolute lifetime as its Max-Age — never re-signed on later responses — and cleared at logout.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meetings.organisation import sessions
from meetings.organisation.sessions import (
    KEY_SCOPE_KEY,
    SCOPE_KEY,
    LoginKey,
    LoginRef,
    SessionLimits,
)

from .db import Database

SESSION_COOKIE = "chibo_session"
ANON_COOKIE = "chibo_anon"
ANON_SALT = "chibo.anonymous"
#: How long an anonymous visitor's CSRF token and messages last (a login form left open).
ANON_MAX_AGE = 12 * 3600
#: Where a login or logout tells the middleware what to do with the cookie.
COOKIE_ACTION = "chibo.session_cookie"


def begin(request: Request, key: str, session_id: int) -> None:
    """After a login: the response sets the new session's cookie (and drops the anonymous one)."""
    request.scope[COOKIE_ACTION] = ("set", key, session_id)


def finish(request: Request) -> None:
    """After a logout: the response clears the session cookie."""
    request.scope[COOKIE_ACTION] = ("clear", "", 0)


def current(request: Request) -> LoginRef | None:
    ref = request.scope.get(SCOPE_KEY)
    return ref if isinstance(ref, LoginRef) else None


def open_deferred(db: Any, scope: Scope, now: dt.datetime, limits: SessionLimits) -> LoginRef | None:
    """On a deferred route: the live session the cookie's key opens, found (and its use
    recorded) in the view's transaction ``db``; it becomes the request's as the middleware
    would have made it."""
    key = scope.get(KEY_SCOPE_KEY)
    if not isinstance(key, LoginKey):
        return None
    row = sessions.find(db, key.key, now=now, limits=limits, address=key.address)
    if row is None:
        return None
    ref = LoginRef(row.id, row.account_id)
    scope[SCOPE_KEY] = ref
    scope["session"] = dict(row.data or {})
    return ref


class ServerSessionMiddleware:
    def __init__(self, app: ASGIApp, *, db: Database, clock: Callable[[], dt.datetime], limits: SessionLimits,
                 secret_key: str, secure: bool, deferred: re.Pattern[str] | None = None) -> None:
        self.app = app
        #: GET paths whose view opens the session itself (``open_deferred``).
        self.deferred = deferred
        self.db = db
        self.clock = clock
        self.limits = limits
        self.secure = secure
        self.anon = URLSafeTimedSerializer(secret_key, salt=ANON_SALT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/static/"):
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        if (self.deferred is not None and scope["type"] == "http" and scope["method"] == "GET"
                and self.deferred.fullmatch(scope["path"])):
            key = cookies_of(scope).get(SESSION_COOKIE, "")
            if key:
                scope[KEY_SCOPE_KEY] = LoginKey(key, (scope.get("client") or ("", 0))[0])
                scope["session"] = {}
                await self.app(scope, receive, send)
                return
        ref, stale_cookie = await self.load(scope)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        original = json.dumps(scope["session"], sort_keys=True, default=str)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._write_back(scope, message, ref, original, stale_cookie)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def load(self, scope: Scope) -> tuple[LoginRef | None, bool]:
        """Put the request's session in ``scope``: its data as ``scope["session"]`` and, when
        logged in, its ``LoginRef`` as ``scope[SCOPE_KEY]``. Returns the ref and whether the
        request carried a session cookie that opens nothing (stale)."""
        cookies = cookies_of(scope)
        key = cookies.get(SESSION_COOKIE, "")
        found: tuple[LoginRef, dict[str, Any]] | None = None
        if key:
            address = (scope.get("client") or ("", 0))[0]
            found = await self.db.run(lambda s: self._load(s, key, address))
        if found is not None:
            ref, data = found
            scope[SCOPE_KEY] = ref
        else:
            ref, data = None, self._read_anon(cookies.get(ANON_COOKIE, ""))
        scope["session"] = data
        return ref, bool(key) and ref is None

    def _load(self, session: Any, key: str, address: str) -> tuple[LoginRef, dict[str, Any]] | None:
        row = sessions.find(session, key, now=self.clock(), limits=self.limits, address=address)
        session.commit()  # the last use, or the end of a session that just timed out
        if row is None:
            return None
        return LoginRef(row.id, row.account_id), dict(row.data or {})

    def _read_anon(self, value: str) -> dict[str, Any]:
        if not value:
            return {}
        try:
            data = self.anon.loads(value, max_age=ANON_MAX_AGE)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    async def _write_back(self, scope: Scope, message: Message, ref: LoginRef | None, original: str,
                          stale_cookie: bool) -> None:
        headers = MutableHeaders(scope=message)
        data = scope.get("session") or {}
        changed = json.dumps(data, sort_keys=True, default=str) != original
        action, key, session_id = scope.get(COOKIE_ACTION) or ("", "", 0)
        if action == "set":
            headers.append("set-cookie", self._cookie(SESSION_COOKIE, key, int(self.limits.lifetime.total_seconds())))
            headers.append("set-cookie", self._cookie(ANON_COOKIE, "", 0))
            if data:
                await self.db.run(lambda s: sessions.save_data(s, session_id, dict(data)))
            return
        if action == "clear" or (stale_cookie and ref is None):
            headers.append("set-cookie", self._cookie(SESSION_COOKIE, "", 0))
        if ref is not None and action != "clear":
            if changed:
                await self.db.run(lambda s: sessions.save_data(s, ref.session_id, dict(data)))
        elif changed or action == "clear":
            value = self.anon.dumps(data) if data else ""
            headers.append("set-cookie", self._cookie(ANON_COOKIE, value, ANON_MAX_AGE if value else 0))

    def _cookie(self, name: str, value: str, max_age: int) -> str:
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
        if max_age == 0:
            parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


def cookies_of(scope: Scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return cookie_parser(value.decode("latin-1"))
    return {}
