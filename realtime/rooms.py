"""Room state and the rules of the meeting room: participants, signalling relay, chat,
hands and speaking order, moderation, lobby, reconnection grace.

One ``Room`` per open meeting, in this process (``RoomHub``). Every change that must
survive a restart — presence, chat — is written through the domain (``meetings.presence``,
``meetings.chat``) *before* anyone is told about it. The one exception, by design: a secret
ballot's online choices stay in the room's ballot box (``meetings.votes.BallotBox``) until
the vote closes, so that nothing stored links a voter to a choice; if the box is lost with
the process, the ballot is voided and run again, and everyone is told (docs/votes.md).
Handlers run on the event loop; database work goes to a worker thread through ``db.run``.
State changes between awaits are atomic; join and leave are serialised by the room's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from sqlalchemy.orm import Session

from meetings.foundation import audit
from meetings.foundation.actors import Actor
from meetings.foundation.errors import DomainError, ValidationError
from meetings.organisation import sessions
from meetings.planning.meetings import Meeting
from meetings.proceedings import chat as chat_store
from meetings.proceedings import presence
from meetings.proceedings import votes as vote_store
from meetings.proceedings.presence import PresenceEventKind
from meetings.proceedings.room_access import REMOVED_MESSAGE

from . import protocol as p
from .connection import Endpoint
from .limits import TokenBucket
from .mediaplane import MediaPlane
from .refusals import CloseCode, Refusal, refuse
from .relay.nat import NatMapping
from .tokens import JOIN_TOKEN_MAX_AGE
from .topology import RELAY_ID, Mesh, Topology, polite

if TYPE_CHECKING:
    from .hub import RemoteEndpoint
    from .relay.server import RelayLink

log = logging.getLogger("chibo.realtime")
T = TypeVar("T")
#: Who the audit log names when the room itself voids a ballot.
ROOM_ACTOR = "phòng họp (hệ thống)"


class Database(Protocol):
    async def run(self, fn: Callable[[Session], T]) -> T: ...


@dataclass(frozen=True)
class Identity:
    """Who a connection is, established by the signalling handshake."""

    participant_id: str
    name: str
    role: str  # "member" | "chair" | "hall"
    account_id: int
    member_id: int | None
    device: str
    voter: bool
    #: The microphone and camera state announced in ``hello`` (updated later by ``media``).
    audio: bool = True
    video: bool = True
    #: The login session the socket was opened with: when it ends, the socket closes.
    login_session: int | None = None
    #: The session a reconnecting page had (``hello.session``): kept if still current.
    resume_session: str | None = None
    #: The client takes RED audio (``hello.red``).
    red: bool = False


@dataclass
class Participant:
    identity: Identity
    audio: bool = True
    video: bool = True
    audio_only: bool = False
    hand: bool = False
    speaking: bool = False
    quality: str | None = None
    conn: Endpoint | None = None
    #: Set while the socket is gone and the grace period runs.
    disconnected_at: dt.datetime | None = None
    grace: asyncio.Task[None] | None = None
    #: Sends fresh TURN credentials before the welcome's expire.
    ice_refresh: asyncio.Task[None] | None = None
    #: Sends fresh join tokens, so that a reconnection needs no token request.
    token_refresh: asyncio.Task[None] | None = None
    interval_id: int | None = None
    admitted: bool = True
    #: This connection's session id (a new one on every reconnection).
    session: str = ""

    @property
    def id(self) -> str:
        return self.identity.participant_id

    def info(self) -> p.ParticipantInfo:
        return p.ParticipantInfo(
            id=self.id, session=self.session, name=self.identity.name, role=self.identity.role, audio=self.audio, video=self.video,
            audio_only=self.audio_only, hand=self.hand, speaking=self.speaking,
            status="reconnecting" if self.disconnected_at else "connected", quality=self.quality,
            voter=self.identity.voter,
        )


def _no_remote(process: str, conns: list[int], frame: str) -> None:
    raise RuntimeError("no broker to reach other processes")


@dataclass
class RoomSettings:
    grace_seconds: float = 20.0
    #: How often connected participants' presence is confirmed in the database: after a crash
    #: their intervals end at the last confirmation (``meetings.proceedings.presence``).
    seen_interval_seconds: float = 10.0
    ice_servers: Callable[[Identity], list[dict[str, Any]]] = field(default=lambda _: [])
    #: Delivers a frame to connections on another process (set by the hub's broker).
    send_remote: Callable[[str, list[int], str], None] = _no_remote
    #: "all" or "relay" (media only through TURN), for every peer connection.
    ice_transport_policy: str = "all"
    #: How often a participant gets fresh ICE servers (TURN credentials expire); None: never.
    ice_refresh_seconds: float | None = None
    #: Issues a join token for a participant (in ``welcome`` and every
    #: ``join_token_refresh_seconds``); None: the page fetches its own.
    join_token: Callable[[int, Identity], str] | None = None
    join_token_refresh_seconds: float = 60.0
    #: Move the room from the mesh to the server relay when more participants than this send
    #: video (realtime/mediaplane.py).
    relay_after: int = 4
    #: Builds a room's relay (tests and the bench pass their own); None: the default relay.
    relay_factory: Callable[..., Any] | None = None
    #: The relay's public address when this machine is behind a 1:1 NAT (RELAY_PUBLIC_IP).
    relay_nat: NatMapping | None = None
    #: Chat messages a participant may post per second on average, and at once. Counted per
    #: participant in the room, so a reconnection (new socket, new token) starts no fresh
    #: allowance; the room lives on one process, so neither does a socket on another process.
    chat_rate: float = 1.0
    chat_burst: float = 5.0


#: The refusal of a join token used before (its nonce is recorded when it opens a connection).
USED_TOKEN = ("auth_failed", "Mã tham gia đã được dùng. Hãy tải lại trang phòng họp.")
#: A used nonce is remembered past any token's lifetime.
JOIN_NONCE_MEMORY = dt.timedelta(seconds=2 * JOIN_TOKEN_MAX_AGE)


def use_nonce(session: Session, nonce: str, now: dt.datetime) -> bool:
    """Record a join token's nonce; False when it opened a connection before."""
    return sessions.use_join_nonce(session, nonce, now=now, keep_for=JOIN_NONCE_MEMORY)


@dataclass(frozen=True)
class _Entering:
    """What a participant's entry wrote and read, in one transaction."""

    interval_id: int
    history: list[p.ChatEntry]
    vote: p.MotionInfo | None
    voted: bool


class Room:
    def __init__(self, meeting: dict[str, Any], db: Database, clock: Callable[[], dt.datetime],
                 settings: RoomSettings, topology: Topology | None = None, banned: set[str] | None = None) -> None:
        self.meeting = meeting
        self.meeting_id: int = meeting["id"]
        self.cell_id: int = meeting["cell_id"]
        self.lobby_enabled: bool = bool(meeting.get("lobby"))
        self.db = db
        self.clock = clock
        self.settings = settings
        self.topology: Topology = topology or Mesh()
        self.participants: dict[str, Participant] = {}
        self.waiting: dict[str, Participant] = {}
        self.hands: list[str] = []
        self.floor: str | None = None
        #: Removed from the meeting: kept in the database, read back when a room starts afresh.
        self.banned: set[str] = set(banned or ())
        #: Each participant's chat allowance, kept for the room's life (finding 12.6).
        self.chat_limits: dict[str, TokenBucket] = {}
        self.lock = asyncio.Lock()
        self.closed = False
        #: The running secret ballot's online ballots (only here, in memory, until it closes).
        self.box: vote_store.BallotBox | None = None
        #: Serialises casting into and emptying the box.
        self.ballot_lock = asyncio.Lock()
        #: Whether this room has looked for a ballot box lost by an earlier room of the meeting.
        self._box_checked = False
        #: What the room said when it voided a ballot and opened it again (told to newcomers
        #: while the new ballot runs).
        self.void_notice: p.Vote | None = None
        self._seen_task = asyncio.create_task(self._refresh_seen())
        #: The latest warm relay link of each member on the join screen (``warm``).
        self._warm_links: dict[str, RelayLink] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        #: Topology switches and the server relay; the room only reports events to it.
        self.media = MediaPlane(self, relay_after=settings.relay_after, relay_factory=settings.relay_factory,
                                nat=settings.relay_nat)

    # ------------------------------------------------------------------ sending

    def present(self) -> list[str]:
        return [pid for pid, part in self.participants.items() if part.conn is not None]

    def send_to(self, pid: str, message: p.Message) -> None:
        part = self.participants.get(pid) or self.waiting.get(pid)
        if part is not None and part.conn is not None:
            part.conn.send(message.encode())

    def broadcast(self, message: p.Message, *, exclude: str | None = None) -> None:
        frame = message.encode()  # encoded once for everybody
        remote: dict[str, list[int]] = {}
        for pid, part in self.participants.items():
            if pid == exclude or part.conn is None:
                continue
            process = getattr(part.conn, "process", None)
            if process is None:
                part.conn.send(frame)
            else:  # participants on another process: one envelope per process, not per person
                remote.setdefault(process, []).append(cast("RemoteEndpoint", part.conn).conn_id)
        for process, conns in remote.items():
            self.settings.send_remote(process, conns, frame)

    def _chairs(self) -> list[Participant]:
        return [part for part in self.participants.values() if part.identity.role == "chair" and part.conn]

    # ------------------------------------------------------------------ joining and leaving

    def warm(self, identity: Identity, deliver: Callable[[p.Message], None]) -> RelayLink | None:
        """A relay link for a member still on the join screen (issue 15, signalling.py), or
        None: in a mesh, in a closed room, for a removed member, and for one the lobby would
        hold (the lobby gates everything, the relay link too). Nothing about the member
        changes here: no presence, no roster line, nothing sent to anyone else."""
        pid = identity.participant_id
        if self.closed or pid in self.banned:
            return None
        existing = self.participants.get(pid) or self.waiting.get(pid)
        admitted = existing.admitted if existing is not None else not (self.lobby_enabled and identity.role == "member")
        if not admitted:
            return None
        # One per member: a token opens any number of join screens (its nonce is spent only
        # on join), and each warm link is a peer connection in this process.
        old = self._warm_links.pop(pid, None)
        if old is not None:
            task = asyncio.ensure_future(old.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        link = self.media.warm(pid, red=identity.red, deliver=deliver)
        if link is not None:
            self._warm_links[pid] = link
        return link

    async def join(self, identity: Identity, conn: Endpoint, nonce: str | None = None) -> None:
        """``nonce``: the join token's, recorded in the same transaction as the presence (one
        commit per join under a rush); a nonce used before refuses the join, changing nothing.
        Without it the handshake recorded the token already (the room lives on another
        process, or the participant moves with its room)."""
        async with self.lock:
            if self.closed:
                conn.send(p.MeetingState(status="closed", message="Cuộc họp đã kết thúc.").encode())
                conn.close_soon(CloseCode.NOT_OPEN, "meeting closed")
                return
            if identity.participant_id in self.banned:
                refuse(conn, Refusal("removed", REMOVED_MESSAGE))
                return
            self._warm_links.pop(identity.participant_id, None)  # its socket (conn.warm_link) holds it
            pid = identity.participant_id
            existing = self.participants.get(pid) or self.waiting.get(pid)
            admitted = existing.admitted if existing is not None else not (self.lobby_enabled and identity.role == "member")
            entering: _Entering | None = None
            if admitted:
                if not self._box_checked:
                    await self._recover_lost_ballot()
                now = self.clock()
                entering = await self.db.run(lambda s: self._entering(s, identity, now, nonce))
                if entering is None:
                    raise Refusal(*USED_TOKEN)
            elif nonce is not None:
                now = self.clock()
                if not await self.db.run(lambda s: self._use_nonce(s, nonce, now)):
                    raise Refusal(*USED_TOKEN)
            resumed = existing is not None
            if existing is not None:
                if existing.conn is not None and existing.conn is not conn:
                    existing.conn.send(p.Replaced(message="Bạn đã vào phòng họp từ một cửa sổ hoặc thiết bị khác.").encode())
                    existing.conn.close_soon(CloseCode.REPLACED, "replaced")
                if existing.grace is not None:
                    existing.grace.cancel()
                    existing.grace = None
                part = existing
                part.conn = conn
                part.disconnected_at = None
            else:
                part = Participant(identity=identity, conn=conn, audio=identity.audio, video=identity.video)
                part.admitted = admitted
            # A page that lost only its socket (a cut, a stalled connection its heartbeat gave
            # up on) keeps its session, and with it every peer connection, which outlive a
            # short cut: media comes back as soon as the network does, without renegotiating.
            same_session = (resumed and part.admitted and pid in self.participants
                            and identity.resume_session is not None and identity.resume_session == part.session)
            if not same_session:
                part.session = secrets.token_hex(4)
            if not part.admitted:
                self.waiting[pid] = part
                conn.send(p.Waiting(message="Vui lòng chờ bí thư cho vào phòng họp.").encode())
                self._notify_lobby()
                return
            await self._enter(part, resumed, same_session=same_session, entering=entering)

    @staticmethod
    def _use_nonce(session: Session, nonce: str, now: dt.datetime) -> bool:
        return use_nonce(session, nonce, now)

    def _entering(self, session: Session, identity: Identity, now: dt.datetime,
                  nonce: str | None = None) -> _Entering | None:
        """One transaction for a participant entering: the token's nonce (None when it was
        used before: then nothing is written), the presence, and what ``welcome`` shows of
        the room's stored state (chat, the current vote)."""
        # Reads first: the writes that follow hold the database's write lock (SQLite has one
        # writer) for as short a time as they can.
        history = [self._chat_entry(m) for m in chat_store.history(session, self.meeting_id)]
        vote, voted = self._current_vote(session, identity.member_id)
        if nonce is not None and not self._use_nonce(session, nonce, now):
            return None
        interval = presence.record_join(session, self.meeting_id, identity.member_id, identity.account_id,
                                        identity.device, now).id
        return _Entering(interval, history, vote, voted)

    async def _enter(self, part: Participant, resumed: bool, *, same_session: bool = False,
                     entering: _Entering | None = None) -> None:
        """Persist presence, then tell everyone (called with the lock held). ``entering``:
        already persisted (``_entering``)."""
        identity = part.identity
        if entering is None:
            if not self._box_checked:
                await self._recover_lost_ballot()
            now = self.clock()
            entering = await self.db.run(lambda s: self._entering(s, identity, now))
            assert entering is not None  # no nonce: nothing to refuse
        part.interval_id = entering.interval_id
        self.waiting.pop(part.id, None)
        self.participants[part.id] = part
        history = entering.history
        vote, voted = entering.vote, entering.voted
        voted = voted or self._in_box(vote, identity.member_id)
        await self.media.evaluate(exclude=part.id)
        present = self.present()
        peers = self.topology.peers(part.id, present)
        assert part.conn is not None
        part.conn.send(
            p.Welcome(
                version=p.PROTOCOL_VERSION, you=part.id, session=part.session, resumed=resumed, meeting=self.meeting,
                participants=[x.info() for x in self.participants.values()],
                polite=self.media.polite_map(part.id, present, peers),
                topology=self.topology.name, peers=peers,
                hands=list(self.hands), floor=self.floor, chat=history,
                ice_servers=self.settings.ice_servers(identity), vote=vote, voted=voted,
                ice_transport_policy=self.settings.ice_transport_policy,
                relay_session=self.media.relay_session,
                join_token=self.settings.join_token(self.meeting_id, identity) if self.settings.join_token else None,
            ).encode()
        )
        if self.void_notice is not None and vote is not None and vote.id == self.void_notice.motion.id \
                and vote.status == "open":
            # A ballot voided because an earlier room lost its box, run again now: whoever
            # arrives (everyone does, after a crash) is told why they vote again.
            part.conn.send(self.void_notice.encode())
        self._schedule_ice_refresh(part)
        self._schedule_token_refresh(part)
        if same_session:
            # The same session back on a new socket: its peer connections stand.
            self.broadcast(p.ParticipantUpdate(participant=part.info()), exclude=part.id)
        else:
            # Newcomer or a new session of someone known: either way peers connect afresh
            # (aiortc peers cannot restart ICE, so a new session means a new peer connection).
            for other in present:
                if other != part.id:
                    self.send_to(other, p.Joined(participant=part.info(), polite=polite(other, part.id)))
        await self.media.entered(part)
        if part.identity.role == "chair":
            self._notify_lobby()
        log.info("join", extra={"fields": {"meeting": self.meeting_id, "participant": part.id, "resumed": resumed}})

    def _schedule_ice_refresh(self, part: Participant) -> None:
        if part.ice_refresh is not None:
            part.ice_refresh.cancel()
            part.ice_refresh = None
        if self.settings.ice_refresh_seconds:
            part.ice_refresh = asyncio.create_task(self._refresh_ice(part, self.settings.ice_refresh_seconds))

    def _schedule_token_refresh(self, part: Participant) -> None:
        if part.token_refresh is not None:
            part.token_refresh.cancel()
            part.token_refresh = None
        if self.settings.join_token is not None:
            part.token_refresh = asyncio.create_task(self._refresh_token(part))

    async def _refresh_token(self, part: Participant) -> None:
        """A join token in the page's hands at all times (they live 120 s): reconnecting after
        a cut then costs no token request over the weak link before the socket."""
        assert self.settings.join_token is not None
        while True:
            await asyncio.sleep(self.settings.join_token_refresh_seconds)
            if self.participants.get(part.id) is not part:
                return
            if part.conn is not None:
                part.conn.send(p.JoinToken(token=self.settings.join_token(self.meeting_id, part.identity)).encode())

    async def _refresh_ice(self, part: Participant, interval: float) -> None:
        """Keep the participant's TURN credentials fresh: peer connections made late in a long
        meeting (a newcomer, a restarted pair) need ones that have not expired."""
        while True:
            await asyncio.sleep(interval)
            if self.participants.get(part.id) is not part:
                return
            if part.conn is not None:
                part.conn.send(p.IceServers(ice_servers=self.settings.ice_servers(part.identity)).encode())

    def disconnected(self, pid: str, conn: Endpoint) -> None:
        """The socket closed. Keep the participant for the grace period unless it was replaced."""
        if pid in self.waiting and self.waiting[pid].conn is conn:
            del self.waiting[pid]
            self._notify_lobby()
            return
        part = self.participants.get(pid)
        if part is None or part.conn is not conn:
            return
        part.conn = None
        part.disconnected_at = self.clock()
        part.speaking = False
        self.broadcast(p.ParticipantUpdate(participant=part.info()))
        part.grace = asyncio.create_task(self._grace_expiry(pid, part.disconnected_at))

    async def _grace_expiry(self, pid: str, since: dt.datetime) -> None:
        await asyncio.sleep(self.settings.grace_seconds)
        async with self.lock:
            part = self.participants.get(pid)
            if part is None or part.conn is not None or part.disconnected_at != since:
                return
            part.grace = None
            await self._remove(part, since, PresenceEventKind.TIMEOUT, "timeout")

    async def leave(self, pid: str) -> None:
        async with self.lock:
            part = self.participants.get(pid)
            if part is None:
                return
            conn = part.conn
            await self._remove(part, self.clock(), PresenceEventKind.LEAVE, "left")
            if conn is not None:
                conn.close_soon(CloseCode.NORMAL, "left")

    async def _remove(self, part: Participant, at: dt.datetime, kind: PresenceEventKind, reason: str, *,
                      persisted: bool = False) -> None:
        identity = part.identity
        if not persisted:
            await self.db.run(
                lambda s: presence.record_leave(s, self.meeting_id, identity.member_id, identity.account_id,
                                                identity.device, at, kind)
            )
        self.participants.pop(part.id, None)
        if part.ice_refresh is not None:
            part.ice_refresh.cancel()
            part.ice_refresh = None
        if part.token_refresh is not None:
            part.token_refresh.cancel()
            part.token_refresh = None
        if part.id in self.hands:
            self.hands.remove(part.id)
            self.broadcast(p.Hands(queue=list(self.hands)))
        if self.floor == part.id:
            self.floor = None
            self.broadcast(p.Floor(participant=None))
        self.broadcast(p.Left(participant=part.id, reason=reason))
        await self.media.left(part.id)

    async def close(self, message: str = "Cuộc họp đã kết thúc.") -> None:
        """The meeting ended: persist everyone's leave, tell them, close the sockets."""
        async with self.lock:
            if self.box is not None and len(self.box):
                # The meeting ended with a secret ballot still running: its ballots cannot be
                # kept past the room, so it is void (and says so) rather than lost in silence.
                async with self.ballot_lock:
                    await self._void(self.box.motion_id)
            self.closed = True
            now = self.clock()
            self.broadcast(p.MeetingState(status="closed", message=message))
            for part in list(self.participants.values()):
                if part.grace is not None:
                    part.grace.cancel()
                if part.ice_refresh is not None:
                    part.ice_refresh.cancel()
                if part.token_refresh is not None:
                    part.token_refresh.cancel()
                def leave(s: Session, i: Identity = part.identity, t: dt.datetime = part.disconnected_at or now) -> None:
                    presence.record_leave(s, self.meeting_id, i.member_id, i.account_id, i.device, t,
                                          PresenceEventKind.LEAVE)

                await self.db.run(leave)
                if part.conn is not None:
                    part.conn.close_soon(CloseCode.NOT_OPEN, "meeting closed")
            for part in self.waiting.values():
                if part.conn is not None:
                    part.conn.send(p.MeetingState(status="closed", message=message).encode())
                    part.conn.close_soon(CloseCode.NOT_OPEN, "meeting closed")
            self.participants.clear()
            self.waiting.clear()
            self._seen_task.cancel()
            await self.media.close()

    async def _refresh_seen(self) -> None:
        while True:
            await asyncio.sleep(self.settings.seen_interval_seconds)
            with contextlib.suppress(Exception):
                await self.heartbeat()

    async def heartbeat(self) -> None:
        """Persist that every connected participant is here now (also on a clean shutdown)."""
        ids = [x.interval_id for x in self.participants.values() if x.conn is not None and x.interval_id]
        if ids:
            now = self.clock()
            await self.db.run(lambda s: presence.record_seen(s, ids, now))

    # ------------------------------------------------------------------ messages

    async def handle(self, pid: str, message: p.Message) -> None:
        """Dispatch one decoded client message from participant ``pid``."""
        if pid in self.waiting:
            if isinstance(message, p.Ping):
                self.send_to(pid, p.Pong(t=message.t))
            elif isinstance(message, p.Leave):
                waiting = self.waiting.pop(pid)
                if waiting.conn:
                    waiting.conn.close_soon(CloseCode.NORMAL, "left")
                self._notify_lobby()
            else:
                raise p.ProtocolError("waiting", "Bạn đang chờ bí thư cho vào phòng họp.", ref=message.TYPE)
            return
        part = self.participants.get(pid)
        if part is None:
            raise p.ProtocolError("not_in_room", "Bạn không còn ở trong phòng họp.", ref=message.TYPE, fatal=True)
        if message.TYPE in p.MODERATOR_MESSAGES and part.identity.role != "chair":
            raise p.ProtocolError("forbidden", "Chỉ người chủ trì mới được thực hiện thao tác này.", ref=message.TYPE)
        match message:
            case p.Offer(to=to, sdp=sdp, to_session=session):
                self._relay(part, to, session, p.RelayedOffer(sender=pid, sender_session=part.session, sdp=sdp))
            case p.Answer(to=to, sdp=sdp, to_session=session):
                self._relay(part, to, session, p.RelayedAnswer(sender=pid, sender_session=part.session, sdp=sdp))
            case p.Candidate(to=to, candidate=candidate, to_session=session):
                self._relay(part, to, session,
                            p.RelayedCandidate(sender=pid, sender_session=part.session, candidate=candidate))
            case p.Renegotiate(to=to, to_session=session):
                self._relay(part, to, session, p.RelayedRenegotiate(sender=pid, sender_session=part.session))
            case p.Media(audio=audio, video=video, audio_only=audio_only):
                part.audio, part.video, part.audio_only = audio, video and not audio_only, audio_only
                if not audio:
                    part.speaking = False
                self.broadcast(p.ParticipantUpdate(participant=part.info()))
                await self.media.changed(part)
            case p.Speaking(speaking=speaking):
                if part.speaking != (speaking and part.audio):
                    part.speaking = speaking and part.audio
                    self.broadcast(p.ParticipantUpdate(participant=part.info()))
                    self.media.speaking_changed(part)
            case p.DataSaver(on=on):
                await self.media.set_data_saver(part, on)
            case p.Quality(level=level, rtt_ms=rtt_ms, loss_pct=loss_pct):
                if level not in ("good", "fair", "poor"):
                    raise p.ProtocolError("bad_message", "Mức chất lượng kết nối không hợp lệ.", ref=message.TYPE)
                if (rtt_ms is not None and not 0 <= rtt_ms <= 600_000) or (
                        loss_pct is not None and not 0 <= loss_pct <= 100):
                    raise p.ProtocolError("bad_message", "Số đo kết nối ngoài khoảng cho phép.", ref=message.TYPE)
                if part.quality != level:
                    part.quality = level
                    self.broadcast(p.ParticipantUpdate(participant=part.info()))
            case p.ChatSend(text=text):
                await self._chat(part, text)
            case p.Hand(raised=raised):
                self._set_hand(part, raised)
            case p.Ping(t=t):
                self.send_to(pid, p.Pong(t=t))
            case p.Leave():
                await self.leave(pid)
            case p.GiveFloor(participant=target):
                self._give_floor(target)
            case p.LowerHand(participant=target):
                self._set_hand(self._target(target, message), False)
            case p.AskMute(participant=target):
                self._target(target, message)
                self.send_to(target, p.MuteRequest(by=pid))
            case p.Mute(participant=target):
                victim = self._target(target, message)
                victim.audio = False
                victim.speaking = False
                self.send_to(target, p.Muted(by=pid))
                self.broadcast(p.ParticipantUpdate(participant=victim.info()))
            case p.Remove(participant=target, reason=reason):
                await self._remove_participant(part, self._target(target, message), reason)
            case p.DeleteChat(message_id=message_id):
                await self._delete_chat(part, message_id)
            case p.Admit(participant=target, accept=accept):
                await self._admit(target, accept)
            case p.Cast(motion_id=motion_id, choice=choice):
                await self._cast(part, motion_id, choice)
            case p.OpenVote(title=title, kind=kind):
                await self._vote_action(part, lambda s, a, m, now: vote_store.open_motion(s, a, m, title, kind, now))
            case p.CloseVote(motion_id=motion_id):
                try:
                    await self.close_vote(Actor(part.identity.account_id, part.identity.name), motion_id)
                except DomainError as exc:
                    raise p.ProtocolError("not_allowed", exc.message, ref="vote") from None
            case p.Hello():
                raise p.ProtocolError("bad_message", "Đã chào hỏi rồi.", ref=message.TYPE)
            case _:
                raise p.ProtocolError("unknown_type", "Loại thông điệp không được hỗ trợ.", ref=message.TYPE)

    def _target(self, target: str, message: p.Message) -> Participant:
        part = self.participants.get(target)
        if part is None:
            raise p.ProtocolError("bad_target", "Người này không có trong phòng họp.", ref=message.TYPE)
        return part

    def _relay(self, sender: Participant, to: str, session: str | None, message: p.Message) -> None:
        if to == RELAY_ID and self.topology.allows(sender.id, to):
            self.media.signal(sender.id, message)
            return
        target = self.participants.get(to)
        if target is None:
            raise p.ProtocolError("bad_target", "Người nhận không có trong phòng họp.", ref=message.TYPE)
        if not self.topology.allows(sender.id, to):
            raise p.ProtocolError("bad_target", "Không được kết nối trực tiếp với người này.", ref=message.TYPE)
        if target.conn is None or (session is not None and session != target.session):
            return  # meant for a session that has ended (a reconnection raced it): drop quietly
        target.conn.send(message.encode())

    def _set_hand(self, part: Participant, raised: bool) -> None:
        if raised and part.id not in self.hands:
            self.hands.append(part.id)
        elif not raised and part.id in self.hands:
            self.hands.remove(part.id)
        else:
            return
        part.hand = raised
        self.broadcast(p.Hands(queue=list(self.hands)))
        self.broadcast(p.ParticipantUpdate(participant=part.info()))

    def _give_floor(self, target: str | None) -> None:
        if target is not None and target not in self.participants:
            raise p.ProtocolError("bad_target", "Người này không có trong phòng họp.", ref="give_floor")
        self.floor = target
        self.broadcast(p.Floor(participant=target))
        self.media.floor_changed()
        if target is not None and target in self.hands:
            self._set_hand(self.participants[target], False)

    async def _chat(self, part: Participant, text: str) -> None:
        bucket = self.chat_limits.setdefault(part.id, TokenBucket(self.settings.chat_rate, self.settings.chat_burst))
        if not bucket.take():
            raise p.ProtocolError("rate_limited", "Gửi tin nhắn quá nhanh. Vui lòng chờ giây lát.", ref="chat")
        identity = part.identity
        now = self.clock()
        try:
            entry = await self.db.run(
                lambda s: self._chat_entry(chat_store.post(
                    s, self.meeting_id, account_id=identity.account_id, member_id=identity.member_id,
                    participant=identity.participant_id, author_name=identity.name, text=text, at=now))
            )
        except DomainError as exc:
            raise p.ProtocolError("bad_message", exc.message, ref="chat") from None
        self.broadcast(p.ChatMessage(message=entry))

    @staticmethod
    def _chat_entry(message: chat_store.ChatMessage) -> p.ChatEntry:
        return p.ChatEntry(id=message.id, sender=message.participant, name=message.author_name, text=message.text,
                           at=message.sent_at.isoformat())

    async def _delete_chat(self, chair: Participant, message_id: int) -> None:
        actor = Actor(chair.identity.account_id, chair.identity.name)
        now = self.clock()
        try:
            await self.db.run(lambda s: chat_store.delete(s, actor, self.meeting_id, self.cell_id, message_id, now))
        except DomainError as exc:
            raise p.ProtocolError("bad_target", exc.message, ref="delete_chat") from None
        self.broadcast(p.ChatDeleted(message_id=message_id))

    async def _remove_participant(self, chair: Participant, victim: Participant, reason: str) -> None:
        if victim.id == chair.id:
            raise p.ProtocolError("bad_target", "Không thể tự mời mình ra khỏi phòng.", ref="remove")
        actor = Actor(chair.identity.account_id, chair.identity.name)
        identity, at = victim.identity, self.clock()

        def persist(s: Session) -> None:
            # One transaction: the removal is kept (and survives a restart) before anyone is told.
            audit.record(s, actor, "room.remove", self.meeting_id, None,
                         {"participant": victim.id, "member_id": identity.member_id, "reason": reason},
                         organisation_id=self.cell_id, note=reason or None, entity_type="Meeting")
            presence.record_leave(s, self.meeting_id, identity.member_id, identity.account_id, identity.device, at,
                                  PresenceEventKind.REMOVED)

        await self.db.run(persist)
        self.banned.add(victim.id)
        conn = victim.conn
        if conn is not None:
            conn.send(p.Removed(reason=reason or "Người chủ trì đã mời bạn ra khỏi phòng họp.").encode())
        async with self.lock:
            await self._remove(victim, at, PresenceEventKind.REMOVED, "removed", persisted=True)
        if conn is not None:
            conn.close_soon(CloseCode.NOT_ALLOWED, "removed")

    async def _admit(self, target: str, accept: bool) -> None:
        part = self.waiting.get(target)
        if part is None:
            raise p.ProtocolError("bad_target", "Người này không còn chờ vào phòng.", ref="admit")
        if not accept:
            del self.waiting[target]
            if part.conn is not None:
                part.conn.send(p.Removed(reason="Bí thư chưa cho vào phòng họp.").encode())
                part.conn.close_soon(CloseCode.NOT_ALLOWED, "denied")
            self._notify_lobby()
            return
        part.admitted = True
        async with self.lock:
            await self._enter(part, resumed=False)
        self._notify_lobby()

    # ------------------------------------------------------------------ votes

    @staticmethod
    def motion_info(session: Session, motion: vote_store.Motion) -> p.MotionInfo:
        result = None
        if motion.status == vote_store.MotionStatus.CLOSED:
            result = {"agree": motion.agree, "disagree": motion.disagree, "abstain": motion.abstain,
                      "denominator": motion.denominator, "votes_needed": motion.votes_needed,
                      "passed": motion.passed}
        return p.MotionInfo(id=motion.id, title=motion.title, kind=motion.kind.value, status=motion.status.value,
                            voted=vote_store.online_voted(session, motion), result=result)

    def _current_vote(self, session: Session, member_id: int | None) -> tuple[p.MotionInfo | None, bool]:
        """The latest motion and whether ``member_id`` voted on it by name (a running secret
        ballot's voters are in the box: ``_in_box``)."""
        motions = vote_store.motions_of(session, self.meeting_id)
        if not motions:
            return None, False
        motion = motions[-1]
        voted = False
        if member_id is not None and motion.status == vote_store.MotionStatus.OPEN:
            voted = member_id in vote_store.voter_ids(session, motion)
        return self.motion_info(session, motion), voted

    def _in_box(self, vote: p.MotionInfo | None, member_id: int | None) -> bool:
        return (vote is not None and vote.status == "open" and self.box is not None
                and self.box.motion_id == vote.id and member_id in self.box)

    def _motion_of(self, session: Session, motion_id: int) -> vote_store.Motion:
        motion = session.get(vote_store.Motion, motion_id)
        if motion is None or motion.meeting_id != self.meeting_id:
            raise DomainError("Không tìm thấy nội dung biểu quyết.")
        return motion

    async def _vote_action(self, chair: Participant, action: Callable[..., vote_store.Motion]) -> None:
        actor = Actor(chair.identity.account_id, chair.identity.name)
        now = self.clock()

        def run(session: Session) -> p.MotionInfo:
            meeting = session.get(Meeting, self.meeting_id)
            assert meeting is not None
            return self.motion_info(session, action(session, actor, meeting, now))

        try:
            info = await self.db.run(run)
        except DomainError as exc:
            raise p.ProtocolError("not_allowed", exc.message, ref="vote") from None
        self.broadcast(p.Vote(motion=info))

    async def _cast(self, part: Participant, motion_id: int, choice: str) -> None:
        member_id = part.identity.member_id
        if member_id is None:
            raise p.ProtocolError("not_allowed", "Thiết bị hội trường không biểu quyết.", ref="cast")
        try:
            parsed = vote_store.Choice(choice)
        except ValueError:
            raise p.ProtocolError("not_allowed", "Lựa chọn không hợp lệ.", ref="cast") from None
        now = self.clock()
        async with self.ballot_lock:
            box = self.box if self.box is not None and self.box.motion_id == motion_id \
                else vote_store.BallotBox(motion_id)

            def run(session: Session) -> p.MotionInfo:
                meeting = session.get(Meeting, self.meeting_id)
                assert meeting is not None
                motion = self._motion_of(session, motion_id)
                if motion.kind == vote_store.VoteKind.SECRET:
                    vote_store.accept_ballot(session, meeting, motion, box, member_id)
                else:
                    vote_store.cast(session, meeting, motion, member_id, parsed, channel="online", now=now)
                return self.motion_info(session, motion)

            try:
                info = await self.db.run(run)
            except vote_store.BallotsLost as exc:
                await self._void(motion_id)
                raise p.ProtocolError("not_allowed", exc.message, ref="cast") from None
            except DomainError as exc:
                raise p.ProtocolError("not_allowed", exc.message, ref="cast") from None
            if info.kind == "secret":
                # Counted in the database (committed): now the choice goes into the box.
                self.box = box
                box.put(member_id, parsed)
        self.send_to(part.id, p.VoteCast(motion_id=motion_id, choice=None if info.kind == "secret" else choice))
        self.broadcast(p.Vote(motion=info))

    async def close_vote(self, actor: Actor, motion_id: int) -> p.MotionInfo:
        """Close a motion; a secret ballot is emptied from this room's box in one transaction.
        Raises DomainError (``BallotsLost`` after voiding the ballot and running it again)."""
        now = self.clock()
        async with self.ballot_lock:
            box = self.box if self.box is not None and self.box.motion_id == motion_id else None

            def run(session: Session) -> p.MotionInfo:
                meeting = session.get(Meeting, self.meeting_id)
                assert meeting is not None
                motion = vote_store.close_motion(session, actor, meeting, self._motion_of(session, motion_id), now,
                                                 box=box)
                return self.motion_info(session, motion)

            try:
                info = await self.db.run(run)
            except vote_store.BallotsLost:
                await self._void(motion_id)
                raise
            if box is not None:
                self.box = None
        self.broadcast(p.Vote(motion=info))
        return info

    @staticmethod
    async def close_vote_without_room(db: Database, meeting_id: int, motion_id: int, actor: Actor,
                                      now: dt.datetime) -> None:
        """No room holds a box (the votes page, nobody in the room): close with the hall's
        count, or void a ballot whose box was lost."""
        def run(session: Session) -> bool:
            meeting = session.get(Meeting, meeting_id)
            motion = vote_store.get_motion(session, motion_id)
            assert meeting is not None and motion.meeting_id == meeting_id
            if motion.status == vote_store.MotionStatus.OPEN and motion.ballots_in_box:
                return False  # ballots in a box no room holds any more
            try:
                vote_store.close_motion(session, actor, meeting, motion, now)
            except vote_store.BallotsLost:
                # A room started meanwhile and took a ballot: that box is alive.
                raise ValidationError("Phòng họp vừa nhận phiếu kín; hãy kết thúc biểu quyết lại.") from None
            return True

        def void(session: Session) -> None:
            meeting = session.get(Meeting, meeting_id)
            assert meeting is not None, "run() found it a moment ago"
            vote_store.void_ballot(session, Actor.system(ROOM_ACTOR), meeting,
                                   vote_store.get_motion(session, motion_id), now)

        if not await db.run(run):
            await db.run(void)
            raise vote_store.BallotsLost()

    async def _recover_lost_ballot(self) -> None:
        """A new room (after a crash, or a move to another process) finds the secret ballot
        whose box an earlier room held, with ballots in it: void it and run it again."""
        async with self.ballot_lock:
            lost = await self.db.run(lambda s: getattr(vote_store.lost_ballot(s, self.meeting_id, self.box), "id", None))
            if lost is not None:
                await self._void(lost)
            self._box_checked = True

    async def _void(self, motion_id: int) -> None:
        """Void the secret ballot ``motion_id`` (its box is lost) and tell everyone in the room;
        called with the ballot lock held."""
        now = self.clock()

        def run(session: Session) -> tuple[p.MotionInfo, p.ChatEntry, str] | None:
            meeting = session.get(Meeting, self.meeting_id)
            motion = session.get(vote_store.Motion, motion_id)
            assert meeting is not None and motion is not None
            voided = vote_store.void_ballot(session, Actor.system(ROOM_ACTOR), meeting, motion, now)
            if voided is None:
                return None
            shown = voided.reopened or voided.motion
            return self.motion_info(session, shown), self._chat_entry(voided.notice), voided.notice.text

        told = await self.db.run(run)
        if self.box is not None and self.box.motion_id == motion_id:
            self.box = None
        if told is None:
            return
        info, entry, notice = told
        log.warning("secret ballot voided: its ballot box was lost",
                    extra={"fields": {"meeting": self.meeting_id, "motion": motion_id}})
        self.void_notice = p.Vote(motion=info, notice=notice)
        self.broadcast(p.ChatMessage(message=entry))
        self.broadcast(self.void_notice)

    async def announce_vote(self) -> None:
        """Something changed outside the room (the votes page): tell everyone."""
        info, _ = await self.db.run(lambda s: self._current_vote(s, None))
        if info is not None:
            self.broadcast(p.Vote(motion=info))

    def _notify_lobby(self) -> None:
        waiting = [{"id": w.id, "name": w.identity.name} for w in self.waiting.values()]
        for chair in self._chairs():
            assert chair.conn is not None
            chair.conn.send(p.Lobby(waiting=waiting).encode())
