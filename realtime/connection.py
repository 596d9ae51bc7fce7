"""One participant's WebSocket, with a bounded send queue and a writer task.

Broadcasting must never wait on the slowest phone: the room puts frames in each connection's
queue and moves on; the writer task drains it. A connection whose queue overflows (a client
that stopped reading) is closed; it will reconnect and resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .refusals import CloseCode

log = logging.getLogger("chibo.realtime")
_ids = itertools.count(1)

SEND_QUEUE_LIMIT = 512


class Endpoint(Protocol):
    """Where the room sends a participant's frames: a local socket or one on another process."""

    closed: bool

    def send(self, frame: str) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...


class Connection:
    """Frames wait in a plain list (an ``asyncio.Queue`` costs four deques and an event, about
    1.5 KB a connection; a province's evening holds ten thousand of them)."""

    def __init__(self, send: Callable[[str], Awaitable[None]], close: Callable[[int, str], Awaitable[None]]) -> None:
        self.id = next(_ids)
        self._send = send
        self._close = close
        #: Frames not yet handed to the socket; ``None`` ends the writer.
        self._frames: list[str | None] = []
        #: Set while the writer waits for frames.
        self._wake: asyncio.Future[None] | None = None
        self._writer = asyncio.create_task(self._write())
        self.closed = False
        self.close_code: int | None = None
        self._closing: asyncio.Task[None] | None = None
        #: A relay link warmed while the member was on the join screen (signalling.py), until
        #: the room adopts it (mediaplane.py) or the socket ends.
        self.warm_link: Any = None

    def send(self, frame: str) -> None:
        """Queue a frame; never blocks."""
        if self.closed:
            return
        if len(self._frames) >= SEND_QUEUE_LIMIT:
            log.warning("send queue full; closing connection", extra={"fields": {"conn": self.id}})
            self.close_soon(CloseCode.TRY_AGAIN_LATER, "client too slow")
            return
        self._push(frame)

    def _push(self, frame: str | None) -> None:
        self._frames.append(frame)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _write(self) -> None:
        try:
            while True:
                if not self._frames:
                    self._wake = asyncio.get_running_loop().create_future()
                    await self._wake
                    self._wake = None
                    continue
                batch, self._frames = self._frames, []
                for frame in batch:
                    if frame is None:
                        return
                    await self._send(frame)
        except Exception:  # the peer went away mid-send; the reader notices and cleans up
            self.closed = True

    def close_soon(self, code: int, reason: str) -> None:
        """Flush what is queued, then close the socket with ``code``."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code

        async def finish() -> None:
            self._push(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, timeout=5)
            with contextlib.suppress(Exception):
                await self._close(code, reason)

        self._closing = asyncio.create_task(finish())

    async def finish(self) -> None:
        """At the end of the handler: let a pending close flush, or stop the writer."""
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._closing), timeout=6)
            return
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer
