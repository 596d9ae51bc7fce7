"""Envelopes: the messages between server processes (over the broker), typed like the client
protocol — one frozen dataclass per ``op``, with one :func:`encode` and one :func:`decode`.

docs/protocol.md ("Between server processes") lists every envelope and its fields;
``tests/test_protocol_docs.py`` fails when the table and :data:`ENVELOPES` differ. A *front* is
the process a participant's socket is connected to; the *owner* is the process its room lives
on.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .refusals import CloseCode

#: Room actions a page may ask of the room's owner.
CommandName = Literal["close_room", "announce_vote", "close_vote"]
COMMANDS: frozenset[str] = frozenset(typing.get_args(CommandName))


class EnvelopeError(ValueError):
    """An envelope this process cannot read (unknown ``op``, missing or mistyped field)."""


@dataclass(frozen=True)
class Envelope:
    OP: ClassVar[str] = ""
    #: Who sends it to whom.
    DIRECTION: ClassVar[str] = ""


@dataclass(frozen=True)
class FromFront(Envelope):
    """What every front → owner envelope about one participant names: the meeting, the front
    process and its connection, and the participant."""

    meeting_id: int
    proc: str
    conn: int
    pid: str


@dataclass(frozen=True)
class Join(FromFront):
    """Front → owner: a participant connected to the front passed the handshake."""

    OP: ClassVar[str] = "join"
    DIRECTION: ClassVar[str] = "front → owner"
    #: The meeting as the room shows it (``welcome.meeting``).
    meeting: dict[str, Any]
    #: The participant (``rooms.Identity`` as a dict).
    identity: dict[str, Any]


@dataclass(frozen=True)
class Msg(FromFront):
    """Front → owner: one client frame, decoded and checked by the front; a ``cast`` travels
    only ``sealed`` for the owner (realtime/sealing.py)."""

    OP: ClassVar[str] = "msg"
    DIRECTION: ClassVar[str] = "front → owner"
    frame: str | None = None
    sealed: str | None = None


@dataclass(frozen=True)
class Gone(FromFront):
    """Front → owner: the participant's socket closed (the grace period starts on the owner)."""

    OP: ClassVar[str] = "gone"
    DIRECTION: ClassVar[str] = "front → owner"


@dataclass(frozen=True)
class Send(Envelope):
    """Owner → front: deliver this server frame to these sockets of the front."""

    OP: ClassVar[str] = "send"
    DIRECTION: ClassVar[str] = "owner → front"
    conns: list[int]
    frame: str


@dataclass(frozen=True)
class Close(Envelope):
    """Owner → front: close this socket with this close code."""

    OP: ClassVar[str] = "close"
    DIRECTION: ClassVar[str] = "owner → front"
    conn: int
    code: CloseCode
    reason: str


@dataclass(frozen=True)
class Command(Envelope):
    """Any → owner: a page asked for a room action; ``close_vote`` also names the motion and
    the actor (``[account_id, label]``)."""

    OP: ClassVar[str] = "command"
    DIRECTION: ClassVar[str] = "any → owner"
    meeting_id: int
    name: CommandName
    message: str = ""
    motion_id: int | None = None
    actor: list[Any] | None = None


@dataclass(frozen=True)
class Sessions(Envelope):
    """Any → all: login sessions of these accounts ended; every process closes its sockets
    whose session is over."""

    OP: ClassVar[str] = "sessions"
    DIRECTION: ClassVar[str] = "any → all"
    accounts: list[int]
    proc: str


ENVELOPES: dict[str, type[Envelope]] = {cls.OP: cls for cls in (Join, Msg, Gone, Send, Close, Command, Sessions)}

#: Envelopes the owner of a room handles, one at a time per room.
RoomEnvelope = Join | Msg | Gone | Command


def encode(envelope: Envelope) -> dict[str, Any]:
    """The JSON object for the broker; optional fields left empty are left out."""
    data: dict[str, Any] = {"op": envelope.OP}
    for f in dataclasses.fields(envelope):
        value = getattr(envelope, f.name)
        if value is None and f.default is None:
            continue
        data[f.name] = int(value) if isinstance(value, CloseCode) else value
    return data


def decode(data: Any) -> Envelope:
    """The envelope in a JSON object from the broker, or EnvelopeError."""
    if not isinstance(data, dict):
        raise EnvelopeError("not an object")
    op = data.get("op")
    cls = ENVELOPES.get(op) if isinstance(op, str) else None
    if cls is None:
        raise EnvelopeError(f"unknown op {op!r}")
    values: dict[str, Any] = {}
    for name, (hint, required) in _schema(cls).items():
        if name not in data:
            if required:
                raise EnvelopeError(f"{cls.OP}: missing {name}")
            continue
        value = data[name]
        if not _matches(value, hint):
            raise EnvelopeError(f"{cls.OP}: mistyped {name}")
        values[name] = CloseCode(value) if hint is CloseCode else value
    if cls is Msg and (values.get("frame") is None) == (values.get("sealed") is None):
        raise EnvelopeError("msg: exactly one of frame and sealed")
    return cls(**values)


# A plain dict as the cache, as in realtime/protocol.py: mypy does not accept the class of a
# frozen dataclass as an argument of a ``functools.cache`` function.
_SCHEMAS: dict[type, dict[str, tuple[Any, bool]]] = {}


def _schema(cls: type[Envelope]) -> dict[str, tuple[Any, bool]]:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        schema = _SCHEMAS[cls] = {f.name: (hints[f.name], f.default is dataclasses.MISSING)
                                  for f in dataclasses.fields(cls)}
    return schema


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is CloseCode:
        return isinstance(value, int) and value in CloseCode._value2member_map_
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return hint is Any
