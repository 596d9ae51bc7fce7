"""Request bodies: capped per route before they are read, and timed while they arrive
(finding 12.5).

Bodies used to be read in full before login or CSRF were checked: a 1 GiB upload to
``/login`` filled the disk with temporary files, a 294 MiB form the memory. Now, for every
HTTP request:

* the cap is ANONYMOUS_MAX_BYTES without a login session, UPLOAD_MAX_BYTES (plus room for the
  form's other fields) on the routes that take files, REQUEST_MAX_BYTES elsewhere;
* a declared ``Content-Length`` over the cap gets 413 at once, before a byte of the body is
  read; a body that turns out longer (chunked, or lying) gets 413 as soon as it passes the cap;
* a body must keep coming: no silence longer than REQUEST_BODY_TIMEOUT, and past that grace
  it must average REQUEST_BODY_MIN_RATE bytes a second, or the request gets 408.

Refused requests are answered with ``Connection: close``: the server then closes the socket
instead of reading (and discarding) the rest. Slow request *heads* are the server's business
(app/server.py), since the application sees a request only once its head has arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meetings.organisation.sessions import SCOPE_KEY

from .web import error_page, takes_upload

#: Room on an upload route for the form's other fields and the multipart framing.
UPLOAD_OVERHEAD = 256 * 1024


class BodyRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


MESSAGES = {
    413: "Dữ liệu gửi lên quá lớn nên máy chủ không nhận. Tệp tài liệu tối đa {upload} MB; "
         "biểu mẫu thông thường tối đa {form} KB.",
    408: "Dữ liệu gửi lên quá chậm nên máy chủ đã dừng nhận. Hãy kiểm tra kết nối mạng rồi gửi lại.",
}


def upload_routes(routes: Iterable[BaseRoute]) -> list[Route]:
    """The routes whose view takes files (``@view(upload=True)``)."""
    return [r for r in routes if isinstance(r, Route) and takes_upload(r.endpoint)]


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, uploads: list[Route], anonymous_max: int, request_max: int,
                 upload_max: int, body_timeout: float, min_rate: float) -> None:
        self.app = app
        self.uploads = uploads
        self.anonymous_max = anonymous_max
        self.request_max = request_max
        self.upload_max = upload_max + UPLOAD_OVERHEAD
        self.body_timeout = body_timeout
        self.min_rate = min_rate

    def limit_for(self, scope: Scope) -> int:
        if scope.get(SCOPE_KEY) is None:
            return self.anonymous_max
        if any(route.path_regex.match(scope["path"]) for route in self.uploads):
            return self.upload_max
        return self.request_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self.refuse(scope, send, 413)
            return
        started = time.monotonic()
        received = 0
        finished = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, finished
            if finished:  # the body is in; later calls wait for a disconnect, untimed
                return await receive()
            # No silence longer than the timeout; past it, at least min_rate bytes a second.
            deadline = min(time.monotonic() + self.body_timeout,
                           started + self.body_timeout + received / self.min_rate)
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise BodyRefused(408) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyRefused(413)
                finished = not message.get("more_body", False)
            else:
                finished = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                if not finished:  # the app answered without reading it all: do not read the rest
                    message.setdefault("headers", []).append((b"connection", b"close"))
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyRefused as refused:
            if response_started:
                raise
            await self.refuse(scope, send, refused.status)

    async def refuse(self, scope: Scope, send: Send, status: int) -> None:
        message = MESSAGES[status].format(upload=self.upload_max // (1024 * 1024), form=self.request_max // 1024)
        response = error_page(Request(scope), status, message)
        response.headers["Connection"] = "close"
        await response(scope, _no_body, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
