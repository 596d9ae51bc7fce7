"""The rooms this process serves, and the route to rooms another process owns.

``attach`` is what the signalling endpoint calls after the handshake: it finds the room's
owner through the broker (claiming the room when nobody owns it) and returns a handle the
connection talks to. With the ``LocalBroker`` every handle is local and nothing changes from
a plain in-memory room. With Redis, a participant connected here whose room lives elsewhere
gets a ``RemoteHandle``: its frames travel to the owner as envelopes and the owner's frames
come back the same way (``RemoteEndpoint`` on the owner's side). A watcher re-attaches local
participants when an owner's lease runs out, and claims the room itself if nobody has.

The envelopes between processes are typed in realtime/envelopes.py (one dataclass per
``op``) and listed in docs/protocol.md ("Between server processes").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy.orm import Session

from meetings.foundation.actors import Actor
from meetings.foundation.errors import DomainError, ValidationError
from meetings.organisation import sessions
from meetings.organisation.sessions import SessionLimits
from meetings.proceedings import presence
from meetings.proceedings import votes as vote_store

from . import envelopes as env
from . import protocol as p
from .broker import RENEW_SECONDS, Broker, LocalBroker
from .connection import Connection
from .group_commit import GroupCommit
from .refusals import CloseCode, Refusal, refuse, reject
from .rooms import USED_TOKEN, Database, Identity, Room, RoomSettings, use_nonce
from .sealing import BallotSealer, SealError
from .topology import Mesh, Topology

log = logging.getLogger("chibo.realtime")

#: How often open sockets' login sessions are checked (idle, lifetime, a missed "sessions").
SESSION_CHECK_SECONDS = 30.0


class RemoteEndpoint:
    """A participant's socket on another process, as the owning room sees it."""

    def __init__(self, broker: Broker, process: str, conn_id: int) -> None:
        self.broker = broker
        self.process = process
        self.conn_id = conn_id
        self.closed = False

    def send(self, frame: str) -> None:
        if not self.closed:
            self.broker.publish(self.process, env.encode(env.Send(conns=[self.conn_id], frame=frame)))

    def close_soon(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.broker.publish(self.process, env.encode(env.Close(conn=self.conn_id, code=CloseCode(code),
                                                                   reason=reason)))


class LocalHandle:
    def __init__(self, room: Room) -> None:
        self.room = room

    async def join(self, identity: Identity, conn: Connection, nonce: str | None = None) -> None:
        await self.room.join(identity, conn, nonce)

    async def handle(self, identity: Identity, message: p.Message, conn: Connection) -> None:
        await self.room.handle(identity.participant_id, message)

    def disconnected(self, identity: Identity, conn: Connection) -> None:
        self.room.disconnected(identity.participant_id, conn)


CHOICES = frozenset(c.value for c in vote_store.Choice)
#: How long a page waits for the room's owner to close a secret ballot.
CLOSE_WAIT_SECONDS = 5.0


class RemoteHandle:
    def __init__(self, hub: RoomHub, owner: str, meeting: dict[str, Any]) -> None:
        self.hub = hub
        self.owner = owner
        self.meeting = meeting

    def _publish(self, envelope: env.Envelope) -> None:
        self.hub.broker.publish(self.owner, env.encode(envelope))

    def _from(self, who: Identity, conn: Connection) -> dict[str, Any]:
        return {"meeting_id": self.meeting["id"], "proc": self.hub.broker.process_id, "conn": conn.id,
                "pid": who.participant_id}

    async def join(self, identity: Identity, conn: Connection, nonce: str | None = None) -> None:
        if nonce is not None:  # recorded here: the owner's room gets the participant as admitted
            now = self.hub.clock()
            if not await self.hub.writes.run(lambda s: use_nonce(s, nonce, now)):
                raise Refusal(*USED_TOKEN)
        self._publish(env.Join(**self._from(identity, conn), meeting=self.meeting,
                               identity=dataclasses.asdict(identity)))

    async def handle(self, identity: Identity, message: p.Message, conn: Connection) -> None:
        if isinstance(message, p.Cast):
            # A choice never crosses Redis next to its voter in clear: sealed for the owner.
            if message.choice not in CHOICES:
                raise p.ProtocolError("not_allowed", "Lựa chọn không hợp lệ.", ref="cast")
            key = await self.hub.owner_key(self.owner)
            sealed = self.hub.sealer.seal(key, self.meeting["id"], identity.participant_id, message.motion_id,
                                          message.choice)
            self._publish(env.Msg(**self._from(identity, conn), sealed=sealed))
            return
        self._publish(env.Msg(**self._from(identity, conn), frame=message.encode()))

    def disconnected(self, identity: Identity, conn: Connection) -> None:
        self._publish(env.Gone(**self._from(identity, conn)))


@dataclass
class Attached:
    """A socket on this process and the room it belongs to."""

    meeting: dict[str, Any]
    identity: Identity
    conn: Connection
    handle: LocalHandle | RemoteHandle


@dataclass
class _Inbox:
    queue: asyncio.Queue[env.RoomEnvelope] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class RoomHub:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime], settings: RoomSettings,
                 topology_factory: Callable[[], Topology] = Mesh, broker: Broker | None = None,
                 site_secret: str = "", session_limits: SessionLimits | None = None,
                 session_check_seconds: float | None = None) -> None:
        self.db = db
        #: The joins' writes, many to a transaction (shared by this process's rooms).
        self.writes = GroupCommit(db)
        self.clock = clock
        self.settings = settings
        self.topology_factory = topology_factory
        self.broker: Broker = broker or LocalBroker()
        self.settings.send_remote = self._send_remote
        self.rooms: dict[int, Room] = {}
        self.attached: dict[int, Attached] = {}
        self.endpoints: dict[tuple[str, int], RemoteEndpoint] = {}
        self._inboxes: dict[int, _Inbox] = {}
        self._create_lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        #: Seals ballots for other processes and opens those sealed for this one. Without the
        #: site's secret (one process) the key directory is never used.
        self.sealer = BallotSealer(site_secret or secrets.token_hex(32))
        self._owner_keys: dict[str, X25519PublicKey] = {}
        self.session_limits = session_limits
        self.session_check_seconds = session_check_seconds or SESSION_CHECK_SECONDS
        self._session_watch: asyncio.Task[None] | None = None

    @property
    def distributed(self) -> bool:
        return not isinstance(self.broker, LocalBroker)

    async def start(self) -> None:
        await self.broker.start(self._on_envelope)
        if self.distributed:
            await self.broker.publish_key(self.sealer.key_record(self.broker.process_id))
            self._watch = asyncio.create_task(self._watch_leases())
        if self.session_limits is not None:
            self._session_watch = asyncio.create_task(self._watch_sessions())

    async def owner_key(self, owner: str) -> X25519PublicKey:
        """The room owner's ballot key, verified; a cast is refused rather than sent in clear."""
        key = self._owner_keys.get(owner)
        if key is None:
            record = await self.broker.key_of(owner)
            try:
                if record is None:
                    raise SealError("no key published")
                key = self.sealer.public_key(owner, record)
            except SealError:
                log.warning("no valid ballot key for a room owner", extra={"fields": {"owner": owner}})
                raise p.ProtocolError("not_allowed", "Chưa gửi được phiếu tới phòng họp; xin bỏ phiếu lại sau giây lát.",
                                      ref="cast") from None
            self._owner_keys[owner] = key
        return key

    # ------------------------------------------------------------------ local rooms

    async def room(self, meeting: dict[str, Any]) -> Room:
        async with self._create_lock:
            room = self.rooms.get(meeting["id"])
            if room is None or room.closed:
                banned = await self.db.run(lambda s: self._start_afresh(s, meeting["id"]))
                room = Room(meeting, self.db, self.clock, self.settings, self.topology_factory(), banned=banned,
                            writes=self.writes)
                self.rooms[meeting["id"]] = room
            return room

    @staticmethod
    def _start_afresh(session: Session, meeting_id: int) -> set[str]:
        """A room starting in this process: whatever a dead process left open ends at its last
        heartbeat, and whoever was removed from the meeting stays out."""
        presence.close_orphaned(session, meeting_id)
        return {"hall" if device == "hall" else f"m{member_id}"
                for member_id, device in presence.removed_from(session, meeting_id) if member_id or device == "hall"}

    def get(self, meeting_id: int) -> Room | None:
        return self.rooms.get(meeting_id)

    def _send_remote(self, process: str, conns: list[int], frame: str) -> None:
        self.broker.publish(process, env.encode(env.Send(conns=conns, frame=frame)))

    # ------------------------------------------------------------------ connections on this process

    async def attach(self, meeting: dict[str, Any], identity: Identity, conn: Connection,
                     nonce: str | None = None) -> LocalHandle | RemoteHandle:
        """``nonce``: the join token's, recorded with the join (raises ``Refusal`` when the
        token opened a connection before)."""
        owner = await self.broker.claim(meeting["id"])
        handle: LocalHandle | RemoteHandle
        handle = LocalHandle(await self.room(meeting)) if owner == self.broker.process_id \
            else RemoteHandle(self, owner, meeting)
        self.attached[conn.id] = Attached(meeting, identity, conn, handle)
        try:
            await handle.join(identity, conn, nonce)
        except Refusal:
            self.attached.pop(conn.id, None)
            raise
        return handle

    def detach(self, conn: Connection) -> None:
        attached = self.attached.pop(conn.id, None)
        if attached is not None:
            attached.handle.disconnected(attached.identity, conn)

    async def dispatch(self, conn: Connection, message: p.Message) -> None:
        attached = self.attached.get(conn.id)
        if attached is None:
            raise p.ProtocolError("not_in_room", "Bạn không còn ở trong phòng họp.", fatal=True)
        await attached.handle.handle(attached.identity, message, conn)

    # ------------------------------------------------------------------ commands from pages

    async def command(self, meeting_id: int, name: env.CommandName, message: str = "") -> None:
        """Run a room command wherever the room lives (close it, announce a vote change)."""
        command = env.Command(meeting_id=meeting_id, name=name, message=message)
        if meeting_id in self.rooms:
            await self._run_command(command)
            return
        if self.distributed:
            owner = await self.broker.owner(meeting_id)
            if owner is not None and owner != self.broker.process_id:
                self.broker.publish(owner, env.encode(command))

    async def _run_command(self, command: env.Command) -> None:
        meeting_id = command.meeting_id
        if command.name == "close_room":
            await self.close_room(meeting_id, command.message or "Cuộc họp đã kết thúc.")
        elif command.name == "announce_vote":
            room = self.rooms.get(meeting_id)
            if room is not None:
                await room.announce_vote()
        elif command.name == "close_vote" and command.actor is not None and command.motion_id is not None:
            room = self.rooms.get(meeting_id)
            if room is not None:
                actor = Actor(command.actor[0], str(command.actor[1]))
                with contextlib.suppress(DomainError):  # the page that asked tells its user
                    await room.close_vote(actor, command.motion_id)

    async def close_secret_ballot(self, meeting_id: int, motion_id: int, actor: Actor) -> None:
        """Close a secret ballot where its ballot box is: in the room, on whichever process
        owns it. With no room anywhere nobody holds a box: the ballot closes with the hall's
        count alone, or — when ballots were taken by a box that is gone — it is voided and
        run again (``meetings.votes.void_ballot``). Raises DomainError."""
        room = self.rooms.get(meeting_id)
        if room is not None and not room.closed:
            await room.close_vote(actor, motion_id)
            return
        if self.distributed:
            owner = await self.broker.owner(meeting_id)
            if owner is not None and owner != self.broker.process_id:
                self.broker.publish(owner, env.encode(env.Command(
                    meeting_id=meeting_id, name="close_vote", motion_id=motion_id,
                    actor=[actor.account_id, actor.label])))
                await self._wait_closed(motion_id)
                return
        await Room.close_vote_without_room(self.db, meeting_id, motion_id, actor, self.clock())

    async def _wait_closed(self, motion_id: int) -> None:
        deadline = asyncio.get_running_loop().time() + CLOSE_WAIT_SECONDS
        while True:
            status = await self.db.run(lambda s: vote_store.get_motion(s, motion_id).status)
            if status == vote_store.MotionStatus.VOID:
                raise vote_store.BallotsLost()
            if status != vote_store.MotionStatus.OPEN:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise ValidationError("Phòng họp chưa chốt được kết quả bỏ phiếu kín (có thể số phiếu tại hội "
                                      "trường vượt số người chưa bỏ phiếu trực tuyến). Hãy kiểm tra rồi thử lại.")
            await asyncio.sleep(0.1)

    async def close_room(self, meeting_id: int, message: str = "Cuộc họp đã kết thúc.") -> None:
        room = self.rooms.pop(meeting_id, None)
        if room is not None:
            await room.close(message)
            await self.broker.release(meeting_id)
        elif self.distributed:
            await self.command(meeting_id, "close_room", message)

    # ------------------------------------------------------------------ login sessions

    async def sessions_ended(self, account_ids: list[int]) -> None:
        """Login sessions of these accounts ended (logout, password change, revoke): close the
        sockets opened with them, here at once and on every other process through the broker."""
        if self.distributed:
            self.broker.publish_all(env.encode(env.Sessions(accounts=account_ids, proc=self.broker.process_id)))
        accounts = set(account_ids)
        await self._close_ended([a for a in self.attached.values() if a.identity.account_id in accounts])

    async def _close_ended(self, candidates: list[Attached], *, touch: bool = False) -> None:
        """Close the sockets among ``candidates`` whose login session is over. With ``touch``
        the others' sessions count as used now (an open room is activity)."""
        if self.session_limits is None:
            return
        candidates = [a for a in candidates if a.identity.login_session is not None and not a.conn.closed]
        if not candidates:
            return
        ids = {int(a.identity.login_session) for a in candidates if a.identity.login_session is not None}
        limits, now = self.session_limits, self.clock()
        live = await self.db.run(lambda s: sessions.live_ids(s, ids, now=now, limits=limits, touch=touch))
        for attached in candidates:
            if attached.identity.login_session not in live:
                refuse(attached.conn, Refusal("session_ended", "Phiên đăng nhập đã kết thúc (đăng xuất, đổi mật khẩu "
                                                               "hoặc bị thu hồi). Hãy đăng nhập lại."))

    async def _watch_sessions(self) -> None:
        # Also catches what no event announced: a session that went idle or reached its
        # lifetime, or an envelope Redis dropped.
        while True:
            await asyncio.sleep(self.session_check_seconds)
            try:
                await self._close_ended(list(self.attached.values()), touch=True)
            except Exception:
                log.exception("session check failed")

    # ------------------------------------------------------------------ envelopes

    async def _on_envelope(self, data: dict[str, Any]) -> None:
        try:
            envelope = env.decode(data)
        except env.EnvelopeError as exc:
            log.warning("unreadable envelope dropped", extra={"fields": {"error": str(exc)}})
            return
        match envelope:
            case env.Send(conns=conns, frame=frame):
                for conn_id in conns:
                    attached = self.attached.get(conn_id)
                    if attached is not None:
                        attached.conn.send(frame)
            case env.Close(conn=conn_id, code=code, reason=reason):
                attached = self.attached.get(conn_id)
                if attached is not None:
                    attached.conn.close_soon(code, reason)
            case env.Sessions(accounts=account_ids, proc=proc):
                if proc != self.broker.process_id:  # this process closed its own already
                    accounts = set(account_ids)
                    await self._close_ended([a for a in self.attached.values() if a.identity.account_id in accounts])
            case env.Join() | env.Msg() | env.Gone() | env.Command():
                # The owner handles each room's envelopes in order, one at a time.
                inbox = self._inboxes.get(envelope.meeting_id)
                if inbox is None:
                    inbox = self._inboxes[envelope.meeting_id] = _Inbox()
                    inbox.task = asyncio.create_task(self._drain(inbox))
                inbox.queue.put_nowait(envelope)

    async def _drain(self, inbox: _Inbox) -> None:
        while True:
            envelope = await inbox.queue.get()
            try:
                await self._owner_envelope(envelope)
            except Exception:
                log.exception("room envelope failed", extra={"fields": {"op": envelope.OP}})

    async def _owner_envelope(self, envelope: env.RoomEnvelope) -> None:
        if isinstance(envelope, env.Command):
            await self._run_command(envelope)
            return
        key = (envelope.proc, envelope.conn)
        if isinstance(envelope, env.Join):
            joined = RemoteEndpoint(self.broker, key[0], key[1])
            self.endpoints[key] = joined
            owner = await self.room(envelope.meeting)
            await owner.join(Identity(**envelope.identity), joined)
            return
        room = self.rooms.get(envelope.meeting_id)
        remote = self.endpoints.get(key)
        if room is None or remote is None:
            return
        if isinstance(envelope, env.Gone):
            self.endpoints.pop(key, None)
            room.disconnected(envelope.pid, remote)
            return
        try:
            await room.handle(envelope.pid, self._client_message(envelope))
        except p.ProtocolError as exc:
            reject(remote, exc)

    def _client_message(self, envelope: env.Msg) -> p.Message:
        if envelope.sealed is None:
            return p.decode(envelope.frame or "")
        try:
            motion_id, choice = self.sealer.open(envelope.sealed, envelope.meeting_id, envelope.pid)
        except SealError:
            raise p.ProtocolError("bad_message", "Không mở được phiếu đã niêm phong; xin bỏ phiếu lại.",
                                  ref="cast") from None
        return p.Cast(motion_id=motion_id, choice=choice)

    # ------------------------------------------------------------------ leases and failover

    async def _watch_leases(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            with contextlib.suppress(Exception):
                await self.broker.publish_key(self.sealer.key_record(self.broker.process_id))
            with contextlib.suppress(Exception):
                await self._check_leases()

    async def _check_leases(self) -> None:
        mine = [mid for mid, room in self.rooms.items() if not room.closed]
        for meeting_id in await self.broker.renew(mine):
            # We were cut off long enough for another process to take the room: let it be the
            # owner (our participants follow it below).
            room = self.rooms.pop(meeting_id, None)
            if room is not None:
                room._seen_task.cancel()
                log.warning("lost a room's lease", extra={"fields": {"meeting": meeting_id}})
        by_meeting: dict[int, list[Attached]] = {}
        for attached in self.attached.values():
            by_meeting.setdefault(attached.meeting["id"], []).append(attached)
        for meeting_id, here in by_meeting.items():
            room = self.rooms.get(meeting_id)
            if room is not None and all(isinstance(a.handle, LocalHandle) and a.handle.room is room for a in here):
                continue  # we own it and everyone here is in it
            owner = await self.broker.claim(meeting_id)
            for attached in here:
                handle = attached.handle
                if owner == self.broker.process_id:
                    current = await self.room(attached.meeting)
                    if isinstance(handle, LocalHandle) and handle.room is current:
                        continue
                    new: LocalHandle | RemoteHandle = LocalHandle(current)
                elif isinstance(handle, RemoteHandle) and handle.owner == owner:
                    continue
                else:
                    new = RemoteHandle(self, owner, attached.meeting)
                # The owner changed (it died, or we were cut off): join the room where it lives
                # now, as a reconnection — the room resumes the participant and its presence.
                log.info("room owner changed", extra={"fields": {"meeting": meeting_id, "owner": owner}})
                attached.handle = new
                await new.join(attached.identity, attached.conn)

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._session_watch is not None:
            self._session_watch.cancel()
        for inbox in self._inboxes.values():
            if inbox.task is not None:
                inbox.task.cancel()
        for room in list(self.rooms.values()):
            room._seen_task.cancel()
            with contextlib.suppress(Exception):
                await room.heartbeat()  # the participants were here until now
            with contextlib.suppress(Exception):
                await room.media.close()
            for part in room.participants.values():
                if part.grace is not None:
                    part.grace.cancel()
                if part.ice_refresh is not None:
                    part.ice_refresh.cancel()
            with contextlib.suppress(Exception):
                await self.broker.release(room.meeting_id)
        self.rooms.clear()
        await self.broker.stop()
