"""How uvicorn serves the app: one configuration for ``python -m app serve`` and the tests.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but not
one that trickles a request's head: 500 half-sent requests were still open after 45 s
(finding 12.5). ``HeadTimeoutH11Protocol`` gives each request head REQUEST_HEADER_TIMEOUT
seconds, counted from the connection's start or the end of the previous response, and then
closes the connection. (Bodies are timed in the application: app/limits.py.) h11 itself
refuses a head over 16 KiB with 400.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Settings

log = logging.getLogger("chibo.http")

#: The longest request head (request line and headers) the server reads.
MAX_HEAD_BYTES = 16 * 1024
#: Room frames are capped at 64 KiB by the protocol; a larger WebSocket message up to this
#: size gets a typed error frame instead of a bare close.
WS_MAX_BYTES = 1024 * 1024


class HeadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head."""

    head_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own: asyncio declares BaseTransport
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._await_head()

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its head arrived
        if not self.transport.is_closing():
            log.info("request head too slow; connection closed", extra={"fields": {"client": self.client}})
            self.transport.close()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a new request's head arrived
            self._stop_head_timer()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._stop_head_timer()  # the socket now belongs to the WebSocket protocol
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutH11Protocol]:
    return type("HeadTimeoutH11Protocol", (HeadTimeoutH11Protocol,), {"head_timeout": seconds})


def server_config(app: Any, settings: Settings, *, host: str = "127.0.0.1", port: int = 8000,
                  **extra: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "log_level": "warning",
        "http": head_timeout_protocol(float(settings.REQUEST_HEADER_TIMEOUT)),
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "ws_max_size": WS_MAX_BYTES,
        # No permessage-deflate: a compressed frame's length depends on its content, and the
        # length of a (TLS-encrypted) cast frame must not tell the choice (docs/votes.md).
        "ws_per_message_deflate": False,
        **extra,
    }
    return uvicorn.Config(app, host=host, port=port, **options)
