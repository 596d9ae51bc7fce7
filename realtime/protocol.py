"""The meeting-room protocol: one frozen dataclass per message, pure encode/decode.

Frames are JSON objects with a ``type``. The client's first frame is ``hello`` carrying the
protocol version; every message the server accepts or sends is documented in
docs/protocol.md (a test checks both directions). Decoding never raises anything but
:class:`ProtocolError`, whose code travels back to the client in an ``error`` frame while the
connection stays open.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

PROTOCOL_VERSION = 1
#: Largest frame the server reads; larger ones get an ``error`` (code ``too_large``).
MAX_FRAME_BYTES = 64 * 1024
MAX_SDP_CHARS = 32 * 1024
MAX_CANDIDATE_CHARS = 1024
MAX_CHAT_CHARS = 1000
MAX_REASON_CHARS = 300
#: Integers in frames fit a signed 64-bit column (ids, counts); larger ones are malformed.
MAX_INT = 2**63 - 1


class ProtocolError(Exception):
    """A frame the server cannot accept; ``code`` is machine-readable, ``message`` Vietnamese."""

    def __init__(self, code: str, message: str, *, ref: str | None = None, fatal: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref
        self.fatal = fatal


# --------------------------------------------------------------------------- base classes


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.TYPE}
        for name in _field_names(type(self)):
            data[name] = _plain(getattr(self, name))
        return data

    def encode(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


# Per-class caches as plain dicts: ``functools.cache`` would do, but mypy does not accept the
# class of a frozen dataclass as a hashable argument.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plain(value: Any) -> Any:
    # Encoding runs once per broadcast on the hot path: plain values first, cached field names.
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}
    return value


# --------------------------------------------------------------------------- client → server


@dataclass(frozen=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    version: int
    token: str
    #: "member" (a person) or "hall" (the meeting hall's shared device; secretaries only).
    device: str = "member"
    audio: bool = True
    video: bool = True
    #: On a reconnection: the session this page had. If the participant is still in the room
    #: (within the grace period), the session is kept and peer connections live on.
    session: str | None = None
    #: The client sends and receives RED audio (RFC 2198) when offered first: the relay then
    #: offers it first on this participant's upload m-line. (aiortc peers cannot encode it.)
    red: bool = False
    #: Authenticate only (issue 15): the member is still on the join screen. Nothing is
    #: recorded and nobody is told; the server answers ``ready`` and, in a relay room the
    #: member may enter without the lobby, offers a relay link that forwards nothing. The
    #: member enters with ``join``.
    warm: bool = False


@dataclass(frozen=True)
class Join(Message):
    """After a ``hello`` with ``warm``: the member clicked "Vào phòng"; enter the room now.
    ``audio``/``video`` replace the hello's."""

    TYPE: ClassVar[str] = "join"
    audio: bool = True
    video: bool = True


@dataclass(frozen=True)
class Offer(Message):
    TYPE: ClassVar[str] = "offer"
    to: str
    sdp: str
    #: The target's session this is meant for; a message for an older session is dropped.
    to_session: str | None = None


@dataclass(frozen=True)
class Answer(Message):
    TYPE: ClassVar[str] = "answer"
    to: str
    sdp: str
    to_session: str | None = None


@dataclass(frozen=True)
class Candidate(Message):
    TYPE: ClassVar[str] = "candidate"
    to: str
    #: {"candidate": "...", "sdpMid": "0", "sdpMLineIndex": 0}; null marks end-of-candidates.
    candidate: dict[str, Any] | None = None
    to_session: str | None = None


@dataclass(frozen=True)
class Renegotiate(Message):
    """Ask a peer to drop its connection with the sender and start a fresh one (used when ICE
    fails and cannot be restarted, e.g. with an aiortc peer)."""

    TYPE: ClassVar[str] = "renegotiate"
    to: str
    to_session: str | None = None


@dataclass(frozen=True)
class Media(Message):
    TYPE: ClassVar[str] = "media"
    audio: bool
    video: bool
    audio_only: bool = False


@dataclass(frozen=True)
class Speaking(Message):
    TYPE: ClassVar[str] = "speaking"
    speaking: bool


@dataclass(frozen=True)
class Quality(Message):
    TYPE: ClassVar[str] = "quality"
    #: "good" | "fair" | "poor"
    level: str
    rtt_ms: int | None = None
    loss_pct: float | None = None


@dataclass(frozen=True)
class ChatSend(Message):
    TYPE: ClassVar[str] = "chat"
    text: str


@dataclass(frozen=True)
class Hand(Message):
    TYPE: ClassVar[str] = "hand"
    raised: bool


@dataclass(frozen=True)
class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    t: float = 0


@dataclass(frozen=True)
class Leave(Message):
    TYPE: ClassVar[str] = "leave"


@dataclass(frozen=True)
class GiveFloor(Message):
    TYPE: ClassVar[str] = "give_floor"
    #: None takes the floor back.
    participant: str | None = None


@dataclass(frozen=True)
class LowerHand(Message):
    TYPE: ClassVar[str] = "lower_hand"
    participant: str


@dataclass(frozen=True)
class AskMute(Message):
    TYPE: ClassVar[str] = "ask_mute"
    participant: str


@dataclass(frozen=True)
class Mute(Message):
    TYPE: ClassVar[str] = "mute"
    participant: str


@dataclass(frozen=True)
class Remove(Message):
    TYPE: ClassVar[str] = "remove"
    participant: str
    reason: str = ""


@dataclass(frozen=True)
class DeleteChat(Message):
    TYPE: ClassVar[str] = "delete_chat"
    message_id: int


@dataclass(frozen=True)
class Admit(Message):
    TYPE: ClassVar[str] = "admit"
    participant: str
    #: False turns the waiting person away.
    accept: bool = True


@dataclass(frozen=True)
class Cast(Message):
    """A vote on the open motion: "agree", "disagree" or "abstain". ``pad`` (spaces, ignored)
    makes every cast frame as long as the longest choice, so that the length of an encrypted
    frame on the network does not tell the choice."""

    TYPE: ClassVar[str] = "cast"
    motion_id: int
    choice: str
    pad: str = ""


@dataclass(frozen=True)
class OpenVote(Message):
    TYPE: ClassVar[str] = "open_vote"
    title: str
    #: "open" (named, by show of hands) or "secret" (ballot)
    kind: str = "open"


@dataclass(frozen=True)
class CloseVote(Message):
    TYPE: ClassVar[str] = "close_vote"
    motion_id: int


@dataclass(frozen=True)
class DataSaver(Message):
    """"Tiết kiệm dữ liệu": upload once, receive audio plus at most one video (moves the room
    to the server relay if it is still a mesh)."""

    TYPE: ClassVar[str] = "data_saver"
    on: bool


CLIENT_MESSAGES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Join, Offer, Answer, Candidate, Renegotiate, Media, Speaking, Quality, ChatSend, Hand, Ping, Leave,
        GiveFloor, LowerHand, AskMute, Mute, Remove, DeleteChat, Admit, Cast, OpenVote, CloseVote, DataSaver,
    )
}
#: Messages only the chair (the cell's secretary) may send.
MODERATOR_MESSAGES = frozenset({"give_floor", "lower_hand", "ask_mute", "mute", "remove", "delete_chat", "admit",
                                "open_vote", "close_vote"})


# --------------------------------------------------------------------------- server → client


@dataclass(frozen=True)
class ParticipantInfo:
    id: str
    #: Changes with every (re)connection; peer connections belong to one session.
    session: str
    name: str
    #: "member" | "chair" | "hall"
    role: str
    audio: bool
    video: bool
    audio_only: bool
    hand: bool
    speaking: bool
    #: "connected" | "reconnecting"
    status: str
    quality: str | None
    #: The member may vote (official, not transferred out or suspended).
    voter: bool


@dataclass(frozen=True)
class ChatEntry:
    id: int
    sender: str | None
    name: str
    text: str
    at: str


@dataclass(frozen=True)
class MotionInfo:
    id: int
    title: str
    kind: str
    status: str
    #: How many have voted so far (online; in-person counts are added by the secretary).
    voted: int
    #: When closed: {"agree", "disagree", "abstain", "denominator", "votes_needed", "passed"}.
    result: dict[str, Any] | None


@dataclass(frozen=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    version: int
    you: str
    session: str
    #: True if this connection took over an earlier one of the same participant.
    resumed: bool
    meeting: dict[str, Any]
    participants: list[ParticipantInfo]
    #: For each other participant: whether *you* are the polite side of that pair.
    polite: dict[str, bool]
    #: Who should connect to whom right now ("mesh": everybody with everybody).
    topology: str
    peers: list[str]
    hands: list[str]
    floor: str | None
    chat: list[ChatEntry]
    #: RTCIceServer dictionaries (TURN credentials issued for this participant, with an expiry).
    ice_servers: list[dict[str, Any]]
    #: The motion being voted on, if any, and whether you already voted on it.
    vote: MotionInfo | None = None
    voted: bool = False
    #: RTCConfiguration.iceTransportPolicy for every peer connection: "all" or "relay".
    ice_transport_policy: str = "all"
    #: In "relay" topology: the relay's session (its offers carry it as ``sender_session``).
    relay_session: str | None = None
    #: A fresh join token for the next reconnection (then every minute in ``join_token``).
    join_token: str | None = None


@dataclass(frozen=True)
class TopologyChanged(Message):
    """The room's media topology changed: connect to ``peers`` and, once connected, drop
    the connections that are no longer listed."""

    TYPE: ClassVar[str] = "topology"
    #: "mesh" | "relay"
    topology: str
    peers: list[str]
    polite: dict[str, bool]
    relay_session: str | None
    #: "video_senders" | "data_saver"
    reason: str


@dataclass(frozen=True)
class RelayTrack:
    mid: str
    participant: str
    #: "audio" | "video"
    kind: str


@dataclass(frozen=True)
class RelayTracks(Message):
    """From the relay, before each of its offers and when what it forwards changes: which
    media sections carry your upload and whose media each other one carries."""

    TYPE: ClassVar[str] = "relay_tracks"
    #: {"audio": mid, "video": mid}: send your microphone and camera on these.
    upload: dict[str, str]
    tracks: list[RelayTrack]
    #: Participants whose video the relay is not sending you right now (weak downlink,
    #: audio only, or data saver).
    video_paused: list[str]
    #: Participants whose video reaches you as an occasional keyframe only (weak downlink).
    video_reduced: list[str] = dataclasses.field(default_factory=list)
    #: Which of the relay's connections with you this is about (numbers only grow): after
    #: ``renegotiate``, ignore this and the offer after it if it names the link you gave up.
    link: int = 0


@dataclass(frozen=True)
class UplinkLoss(Message):
    """From the relay, every few seconds while it forwards: the share of each publisher's
    packets lost on the way to the relay over the last seconds, in per cent. In the mesh a
    page measures this itself; through the relay the others' own statistics cannot see it."""

    TYPE: ClassVar[str] = "uplink_loss"
    #: {participant: loss in per cent (audio and video packets together)}
    loss_pct: dict[str, float]


@dataclass(frozen=True)
class Joined(Message):
    """A participant arrived, or came back in a new session: connect to them afresh."""

    TYPE: ClassVar[str] = "joined"
    participant: ParticipantInfo
    polite: bool


@dataclass(frozen=True)
class Left(Message):
    TYPE: ClassVar[str] = "left"
    participant: str
    #: "left" | "timeout" | "removed"
    reason: str


@dataclass(frozen=True)
class ParticipantUpdate(Message):
    TYPE: ClassVar[str] = "participant"
    participant: ParticipantInfo


@dataclass(frozen=True)
class RelayedOffer(Message):
    TYPE: ClassVar[str] = "offer"
    sender: str
    sender_session: str
    sdp: str


@dataclass(frozen=True)
class RelayedAnswer(Message):
    TYPE: ClassVar[str] = "answer"
    sender: str
    sender_session: str
    sdp: str


@dataclass(frozen=True)
class RelayedCandidate(Message):
    TYPE: ClassVar[str] = "candidate"
    sender: str
    sender_session: str
    candidate: dict[str, Any] | None


@dataclass(frozen=True)
class RelayedRenegotiate(Message):
    TYPE: ClassVar[str] = "renegotiate"
    sender: str
    sender_session: str


@dataclass(frozen=True)
class ChatMessage(Message):
    TYPE: ClassVar[str] = "chat"
    message: ChatEntry


@dataclass(frozen=True)
class ChatDeleted(Message):
    TYPE: ClassVar[str] = "chat_deleted"
    message_id: int


@dataclass(frozen=True)
class Hands(Message):
    TYPE: ClassVar[str] = "hands"
    queue: list[str]


@dataclass(frozen=True)
class Floor(Message):
    TYPE: ClassVar[str] = "floor"
    participant: str | None


@dataclass(frozen=True)
class MuteRequest(Message):
    TYPE: ClassVar[str] = "mute_request"
    by: str


@dataclass(frozen=True)
class Muted(Message):
    TYPE: ClassVar[str] = "muted"
    by: str


@dataclass(frozen=True)
class Removed(Message):
    TYPE: ClassVar[str] = "removed"
    reason: str


@dataclass(frozen=True)
class Waiting(Message):
    """Sent to a participant held in the lobby."""

    TYPE: ClassVar[str] = "waiting"
    message: str


@dataclass(frozen=True)
class Lobby(Message):
    """Sent to the chair: who is waiting to be admitted."""

    TYPE: ClassVar[str] = "lobby"
    waiting: list[dict[str, str]]


@dataclass(frozen=True)
class MeetingState(Message):
    TYPE: ClassVar[str] = "meeting"
    status: str
    message: str = ""


@dataclass(frozen=True)
class Replaced(Message):
    TYPE: ClassVar[str] = "replaced"
    message: str


@dataclass(frozen=True)
class Vote(Message):
    """A motion opened, progressed, closed or (a secret ballot whose box was lost) was voided
    and opened again — then ``notice`` says so."""

    TYPE: ClassVar[str] = "vote"
    motion: MotionInfo
    notice: str | None = None


@dataclass(frozen=True)
class VoteCast(Message):
    """To the voter: the vote was recorded (``choice`` is null for a secret ballot)."""

    TYPE: ClassVar[str] = "vote_cast"
    motion_id: int
    choice: str | None


@dataclass(frozen=True)
class IceServers(Message):
    """Fresh TURN credentials, sent before the ones from ``welcome`` expire."""

    TYPE: ClassVar[str] = "ice_servers"
    ice_servers: list[dict[str, Any]]


@dataclass(frozen=True)
class JoinToken(Message):
    """A fresh join token, every minute: a reconnection needs no token request of its own."""

    TYPE: ClassVar[str] = "join_token"
    token: str


@dataclass(frozen=True)
class Ready(Message):
    """The answer to a ``hello`` with ``warm``: authenticated, not in the room yet. A relay
    link offered before ``join`` comes from ``relay_session`` and carries nothing until then."""

    TYPE: ClassVar[str] = "ready"
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: str = "all"
    #: Set when the relay offers a warm link (its ``relay_tracks`` and ``offer`` follow).
    relay_session: str | None = None


@dataclass(frozen=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    t: float


@dataclass(frozen=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    #: The type of the frame that caused it, when known.
    ref: str | None = None


SERVER_MESSAGES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Welcome, Joined, Left, ParticipantUpdate, RelayedOffer, RelayedAnswer, RelayedCandidate, RelayedRenegotiate,
        ChatMessage, ChatDeleted, Hands, Floor, MuteRequest, Muted, Removed, Waiting, Lobby, MeetingState,
        Replaced, Pong, Error, Vote, VoteCast, IceServers, TopologyChanged, RelayTracks, UplinkLoss,
        JoinToken, Ready,
    )
}


# --------------------------------------------------------------------------- decoding

_LIMITS = {"sdp": MAX_SDP_CHARS, "text": MAX_CHAT_CHARS, "reason": MAX_REASON_CHARS, "token": 2048,
           "to": 64, "to_session": 64, "session": 64, "participant": 64, "level": 16, "device": 16, "title": 500, "kind": 16,
           "choice": 16, "pad": 16}


def decode(frame: str | bytes) -> Message:
    """Parse one client frame into its message class, or raise ProtocolError."""
    if isinstance(frame, bytes):
        if len(frame) > MAX_FRAME_BYTES:
            raise ProtocolError("too_large", "Thông điệp quá lớn.")
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("bad_json", "Thông điệp không phải văn bản UTF-8.") from None
    if len(frame.encode("utf-8")) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"Thông điệp quá lớn (tối đa {MAX_FRAME_BYTES // 1024} KB).")
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "Thông điệp không phải JSON hợp lệ.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "Thông điệp phải là một đối tượng JSON.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "Thông điệp thiếu trường “type”.")
    cls = CLIENT_MESSAGES.get(kind)
    if cls is None:
        raise ProtocolError("unknown_type", f"Loại thông điệp không được hỗ trợ: {kind[:40]}", ref=kind[:40])
    return _build(cls, data)


_SCHEMAS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def _schema(cls: type[Message]) -> tuple[tuple[str, Any, bool], ...]:
    """(field name, type hint, required) per field; resolving hints is slow, so once per class."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        schema = _SCHEMAS[cls] = tuple(
            (f.name, hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls))
    return schema


def _build(cls: type[Message], data: dict[str, Any]) -> Message:
    values: dict[str, Any] = {}
    for name, hint, required in _schema(cls):
        if name not in data:
            if required:
                raise ProtocolError("bad_message", f"Thiếu trường “{name}”.", ref=cls.TYPE)
            continue
        value = data[name]
        if not _matches(value, hint):
            raise ProtocolError("bad_message", f"Trường “{name}” sai kiểu.", ref=cls.TYPE)
        limit = _LIMITS.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise ProtocolError("too_large", f"Trường “{name}” quá dài.", ref=cls.TYPE)
        values[name] = value
    if cls is Candidate and values.get("candidate") is not None:
        cand = values["candidate"]
        if not isinstance(cand.get("candidate", ""), str) or len(json.dumps(cand)) > MAX_CANDIDATE_CHARS:
            raise ProtocolError("bad_message", "Ứng viên ICE không hợp lệ.", ref=cls.TYPE)
    return cls(**values)


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT
    if hint is float:
        if isinstance(value, float):
            return math.isfinite(value)  # JSON from Python may carry NaN and Infinity
        return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT
    if hint is str:
        return isinstance(value, str)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is list or hint is list:
        return isinstance(value, list)
    return False


