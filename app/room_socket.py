"""The room's WebSocket, straight from the server to the signalling endpoint.

A WebSocket's ASGI call stays on the stack for the connection's whole life, and so does every
middleware it passes through: each keeps a coroutine frame, and Starlette's exception
handling and routing keep closures and wrappers — about 6 KB a connection, measured with
tracemalloc, which is a quarter of what a province's 10,000 participants cost the process
(bench/signalling.py). None of those middlewares does anything to a WebSocket (gzip, request
logs, security headers and body limits are for HTTP; exceptions would only be logged), except
the session middleware, which finds the login session. So ``RoomSocketMiddleware``, the
outermost middleware, loads the session itself and calls the endpoint; every other
WebSocket and every HTTP request goes down the usual stack.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from realtime.signalling import RAW_SEND

ROOM_PATH = re.compile(r"/ws/meetings/([0-9]{1,18})")


class RoomSocketMiddleware:
    def __init__(self, app: Any, *, load_session: Callable[[Any], Awaitable[Any]],
                 endpoint: Callable[[WebSocket], Awaitable[None]]) -> None:
        self.app = app
        #: ``ServerSessionMiddleware.load``: the one session lookup.
        self.load_session = load_session
        self.endpoint = endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        match = ROOM_PATH.fullmatch(scope["path"]) if scope["type"] == "websocket" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        scope[RAW_SEND] = send
        scope["path_params"] = {"meeting_id": int(match[1])}
        await self.load_session(scope)
        await self.endpoint(WebSocket(scope, receive, send))


async def no_app(scope: Any, receive: Any, send: Any) -> None:
    """The app of a ``ServerSessionMiddleware`` used only for its ``load``."""
    raise RuntimeError("not an ASGI app")
