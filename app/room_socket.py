"""The room's WebSocket, straight from the server to the signalling endpoint.

A WebSocket's ASGI call stays on the stack for the connection's whole life, and so does every
middleware it passes through: each keeps a coroutine frame, and Starlette's exception
handling and routing keep closures and wrappers — about 6 KB a connection, measured with
tracemalloc, which is a quarter of what a province's 10,000 participants cost the process
(bench/signalling.py). None of those middlewares does anything to a WebSocket (gzip, request
logs, security headers and body limits are for HTTP; exceptions would only be logged), except
the session middleware, which finds the login session. So ``RoomSocketMiddleware``, the
outermost middleware, hands the session cookie's key to the endpoint, whose handshake opens the
session in the same transaction as the rest of its checks (one trip to the database per join
instead of two: bench/join.py); every other WebSocket and every HTTP request goes down the
usual stack.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from meetings.organisation.sessions import KEY_SCOPE_KEY, LoginKey
from realtime.signalling import RAW_SEND

from .sessions import SESSION_COOKIE, cookies_of

ROOM_PATH = re.compile(r"/ws/meetings/([0-9]{1,18})")


class RoomSocketMiddleware:
    def __init__(self, app: Any, *, endpoint: Callable[[WebSocket], Awaitable[None]]) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        match = ROOM_PATH.fullmatch(scope["path"]) if scope["type"] == "websocket" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        scope[RAW_SEND] = send
        scope["path_params"] = {"meeting_id": int(match[1])}
        key = cookies_of(scope).get(SESSION_COOKIE, "")
        if key:
            scope[KEY_SCOPE_KEY] = LoginKey(key, (scope.get("client") or ("", 0))[0])
        await self.endpoint(WebSocket(scope, receive, send))
