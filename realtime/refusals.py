"""How the server ends a WebSocket: the close codes, and the one place that turns a refusal
into an ``error`` frame followed by its close code.

docs/protocol.md's close-code table lists exactly the members of :class:`CloseCode`
(``tests/test_protocol_docs.py``); nothing in ``realtime/`` closes a socket with a bare number.
"""

from __future__ import annotations

import enum
from typing import Protocol

from meetings.proceedings.room_access import RoomRefusal

from . import protocol as p


class CloseCode(enum.IntEnum):
    #: The participant left (``leave``, or out of the lobby).
    NORMAL = 1000
    #: Kept flooding after ``rate_limited``.
    POLICY_VIOLATION = 1008
    #: The client stopped reading: its send queue overflowed.
    TRY_AGAIN_LATER = 1013
    #: A newer connection of the same participant took over.
    REPLACED = 4000
    #: A bad or late ``hello``, a wrong protocol version, a fatal protocol error.
    PROTOCOL = 4400
    #: Not logged in, a bad, expired or used token, or the login session ended.
    UNAUTHORISED = 4401
    #: Not allowed: another cell, not on the remote list, removed, turned away from the lobby,
    #: the hall device without being its chair, a foreign ``Origin``.
    NOT_ALLOWED = 4403
    #: No such meeting.
    NOT_FOUND = 4404
    #: The client pinged, then sent nothing for 8 s.
    HEARTBEAT_TIMEOUT = 4408
    #: The meeting is not open (not started yet, or ended).
    NOT_OPEN = 4409


#: The close code that follows an ``error`` frame which ends the connection, by error code.
#: A fatal protocol error of any other code closes with ``PROTOCOL``.
CLOSES: dict[str, CloseCode] = {
    "auth_failed": CloseCode.UNAUTHORISED,
    "session_ended": CloseCode.UNAUTHORISED,
    "not_allowed": CloseCode.NOT_ALLOWED,
    "removed": CloseCode.NOT_ALLOWED,
    "not_found": CloseCode.NOT_FOUND,
    "meeting_not_open": CloseCode.NOT_OPEN,
    "flooding": CloseCode.POLICY_VIOLATION,
}


class Closable(Protocol):
    """A participant's socket, here or on another process (``connection.Endpoint``)."""

    def send(self, frame: str) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...


class Refusal(Exception):
    """The server ends a connection: an ``error`` frame (``code``, the Vietnamese ``message``),
    then the close code ``code`` maps to."""

    def __init__(self, code: str, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    @property
    def close_code(self) -> CloseCode:
        return CLOSES.get(self.code, CloseCode.PROTOCOL)

    @classmethod
    def of(cls, refusal: RoomRefusal | p.ProtocolError) -> Refusal:
        """A room's refusal (``proceedings.room_access``) or a protocol error, as a refusal."""
        if isinstance(refusal, RoomRefusal):
            return cls(refusal.code, refusal.reason, ref="hello")
        return cls(refusal.code, refusal.message, ref=refusal.ref)


def refuse(endpoint: Closable, refusal: Refusal) -> None:
    """Tell the client why, then close its socket with the refusal's code."""
    endpoint.send(p.Error(code=refusal.code, message=refusal.message, ref=refusal.ref).encode())
    endpoint.close_soon(refusal.close_code, refusal.code)


def reject(endpoint: Closable, error: p.ProtocolError) -> None:
    """A frame the server cannot accept: an ``error`` frame; a fatal one also closes."""
    if error.fatal:
        refuse(endpoint, Refusal.of(error))
    else:
        endpoint.send(p.Error(code=error.code, message=error.message, ref=error.ref).encode())
