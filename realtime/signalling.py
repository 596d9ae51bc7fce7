"""The WebSocket endpoint ``/ws/meetings/{meeting_id}``: handshake, authorisation, the
read loop with limits, and hand-over to the room.

A connection is accepted only from an allowed origin, with a live login session (the web
layer put it in the scope), and with a ``hello`` carrying a join token issued to that session
for this meeting and not used before; the meeting must be open and the member allowed to join
remotely (``meetings.proceedings.room_access``). Refusals send an ``error`` frame with the reason in
Vietnamese, then close with the code the refusal maps to (``refusals.CLOSES``; the table is
in docs/protocol.md). When the login session ends later, the hub closes the socket
(``session_ended``).

Errors in later frames (malformed, unknown, oversized, too fast) get an ``error`` frame and
the connection stays open.

A ``hello`` with ``warm`` (issue 15) comes from a page still on the join screen: it is
authenticated and authorised like any other, answered with ``ready``, and then waits for
``join`` without entering the room — no presence, no roster line, the token's nonce unused.
Meanwhile it may answer pings and, in a relay room the member could enter without the
lobby, a relay link that forwards nothing (``Room.warm``); on ``join`` the login session
and the room access are checked again and the member enters as after a plain ``hello``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import sessions
from meetings.organisation.accounts import Account
from meetings.organisation.sessions import (
    KEY_SCOPE_KEY,
    SCOPE_KEY,
    LoginKey,
    LoginRef,
    SessionLimits,
)
from meetings.proceedings.room_access import RoomRefusal, RoomRole

from . import protocol as p
from .admission import Admission, AdmissionCache
from .connection import Connection
from .hub import RoomHub
from .limits import TokenBucket
from .refusals import CloseCode, Refusal, refuse, reject
from .rooms import Database, Identity
from .tokens import JoinGrant, TokenError, read_join_token
from .topology import RELAY_ID

log = logging.getLogger("chibo.realtime")

HELLO_TIMEOUT = 10.0
EXPIRED = "Phiên đăng nhập đã hết hạn. Hãy đăng nhập lại."
NOT_FOR_YOU = "Mã tham gia không dành cho tài khoản hoặc cuộc họp này."

#: A client that pings (the room page does, every second) and then sends nothing for this
#: long has lost its network: its socket is closed (HEARTBEAT_TIMEOUT), so that the others see it
#: reconnecting now rather than when TCP gives up minutes later.
HEARTBEAT_TIMEOUT = 8.0

#: Where ``RawSendMiddleware`` keeps the server's own ``send`` in a WebSocket scope.
RAW_SEND = "chibo.raw_send"


class RawSendMiddleware:
    """Keeps the ASGI server's own ``send`` for WebSocket scopes, before the session and
    exception middlewares wrap it. Those wrappers act only on an HTTP response start, yet on
    every frame they cost a chain of coroutine calls; a province's rooms send tens of
    thousands of frames a second (bench/signalling.py). Install it as the outermost
    middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)


def frame_sender(websocket: WebSocket) -> Callable[[str], Any]:
    """Sends a text frame: straight to the server when ``RawSendMiddleware`` kept its
    ``send``, through Starlette otherwise."""
    raw = websocket.scope.get(RAW_SEND)
    if raw is None:
        return websocket.send_text

    def send_text(text: str) -> Any:
        return raw({"type": "websocket.send", "text": text})

    return send_text


def _identity(admission: Admission, account: Account, login_session: int) -> Identity:
    """The participant an admitted account becomes: the hall device, or the member (as chair
    when they run the meeting)."""
    if admission.role is RoomRole.HALL:
        return Identity(participant_id="hall", name="Hội trường", role="hall", account_id=account.id,
                        member_id=None, device="hall", voter=False, login_session=login_session)
    member_id = account.member_id
    return Identity(
        participant_id=f"m{member_id}" if member_id is not None else f"a{account.id}",
        name=admission.name or account.display_name,
        role="chair" if admission.role is RoomRole.CHAIR else "member",
        account_id=account.id,
        member_id=member_id,
        device="member",
        voter=admission.voter,
        login_session=login_session,
    )


@dataclass
class SignallingConfig:
    secret_key: str
    allowed_origins: set[str]
    #: Frames per second a client may send on average, and the burst it may send at once.
    rate: float = 30.0
    burst: float = 80.0
    #: Frames dropped for flooding before the connection is closed.
    flood_limit: int = 400
    #: When a login session ends by itself (idle, too old): SESSION_IDLE_TIMEOUT, SESSION_MAX_AGE.
    session_limits: SessionLimits = dataclasses.field(default_factory=lambda: SessionLimits(
        idle=dt.timedelta(hours=4), lifetime=dt.timedelta(days=7)))


class SignallingEndpoint:
    def __init__(self, hub: RoomHub, db: Database, config: SignallingConfig, clock: Callable[[], dt.datetime],
                 admissions: AdmissionCache | None = None) -> None:
        self.hub = hub
        #: Room access decisions kept while nothing they read changes (shared with the token route).
        self.admissions = admissions or AdmissionCache()
        self.db = db
        self.config = config
        self.clock = clock

    def origin_allowed(self, websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        if origin is None:
            return False
        host = websocket.headers.get("host", "")
        same_origin = {f"http://{host}", f"https://{host}"}
        return origin.rstrip("/") in self.config.allowed_origins | same_origin

    async def handle(self, websocket: WebSocket) -> None:
        meeting_id = int(websocket.path_params["meeting_id"])
        if not self.origin_allowed(websocket):
            # Before accept: the browser sees an HTTP 403 (cross-site WebSocket hijacking).
            await websocket.close(code=CloseCode.NOT_ALLOWED)
            return
        await websocket.accept()
        conn = Connection(frame_sender(websocket), lambda code, reason: websocket.close(code, reason))
        try:
            try:
                identity, meeting, nonce, recheck = await self._handshake(websocket, meeting_id)
                if recheck is not None:
                    joining = await self._warm(websocket, conn, identity, meeting_id, recheck)
                    if joining is None:
                        return
                    identity, meeting = joining
                # The token's nonce is recorded with the join, so that a refused handshake
                # does not spend the token: each token opens one connection (finding 12.6),
                # also when two processes see it at the same moment.
                await self.hub.attach(meeting, identity, conn, nonce)
            except Refusal as refusal:
                refusal.ref = "hello"
                refuse(conn, refusal)
                return
            await self._read_loop(websocket, conn)
        except WebSocketDisconnect:
            pass
        finally:
            self.hub.detach(conn)
            if conn.warm_link is not None:  # the member never joined, or was not let in
                await conn.warm_link.close()
                conn.warm_link = None
            await conn.finish()

    async def _receive_text(self, websocket: WebSocket) -> str | bytes:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", CloseCode.NORMAL))
        if message.get("text") is not None:
            return str(message["text"])
        return bytes(message.get("bytes") or b"")

    async def _handshake(self, websocket: WebSocket, meeting_id: int) -> tuple[
            Identity, dict[str, Any], str, Callable[[], Any] | None]:
        """The identity, the meeting, the token's nonce, and for a ``warm`` hello the check
        that runs again on ``join`` (None otherwise)."""
        try:
            frame = await asyncio.wait_for(self._receive_text(websocket), timeout=HELLO_TIMEOUT)
        except TimeoutError:
            raise Refusal("timeout", "Không nhận được lời chào (hello) kịp thời.") from None
        try:
            hello = p.decode(frame)
        except p.ProtocolError as exc:
            raise Refusal(exc.code, exc.message) from None
        if not isinstance(hello, p.Hello):
            raise Refusal("bad_message", "Thông điệp đầu tiên phải là “hello”.")
        if hello.version != p.PROTOCOL_VERSION:
            raise Refusal("version", "Phiên bản ứng dụng không khớp. Hãy tải lại trang.")
        if hello.device not in ("member", "hall"):
            raise Refusal("bad_message", "Loại thiết bị không hợp lệ.")
        try:
            grant = read_join_token(self.config.secret_key, hello.token)
        except TokenError as exc:
            raise Refusal("auth_failed", exc.message) from None
        # The login session: opened here from the cookie's key (app/room_socket.py), or
        # already opened by the session middleware.
        login = websocket.scope.get(SCOPE_KEY)
        key = websocket.scope.get(KEY_SCOPE_KEY)
        opened: LoginRef | LoginKey
        if isinstance(login, LoginRef):
            opened = login
        elif isinstance(key, LoginKey):
            opened = key
        else:
            raise Refusal("auth_failed", EXPIRED)
        if not grant.nonce or grant.meeting_id != meeting_id or grant.device != hello.device:
            raise Refusal("auth_failed", NOT_FOR_YOU)
        device = hello.device

        async def authorise() -> tuple[Identity, dict[str, Any]]:
            now = self.clock()
            return await self.db.run(lambda s: self._authorise(s, opened, grant, meeting_id, device, now))

        identity, meeting = await authorise()
        identity = dataclasses.replace(identity, audio=hello.audio, video=hello.video,
                                       resume_session=hello.session, red=hello.red)
        return identity, meeting, grant.nonce, (authorise if hello.warm else None)

    async def _warm(self, websocket: WebSocket, conn: Connection, identity: Identity, meeting_id: int,
                    recheck: Callable[[], Any]) -> tuple[Identity, dict[str, Any]] | None:
        """The join screen's socket (see the module docstring) until ``join``: the identity and
        meeting to enter with, or None when the socket ended or went silent first."""
        room = self.hub.get(meeting_id)
        link = room.warm(identity, lambda message: conn.send(message.encode())) if room is not None else None
        conn.warm_link = link
        settings = self.hub.settings
        conn.send(p.Ready(ice_servers=settings.ice_servers(identity), ice_transport_policy=settings.ice_transport_policy,
                          relay_session=link.server.session if link is not None else None).encode())
        bucket = TokenBucket(self.config.rate, self.config.burst)
        while True:
            try:
                frame = await asyncio.wait_for(self._receive_text(websocket), timeout=HEARTBEAT_TIMEOUT)
            except TimeoutError:
                conn.close_soon(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                return None
            if not bucket.take():
                continue
            try:
                message = p.decode(frame)
            except p.ProtocolError as exc:
                reject(conn, exc)
                if exc.fatal:
                    return None
                continue
            match message:
                case p.Join(audio=audio, video=video):
                    fresh, meeting = await recheck()
                    return dataclasses.replace(fresh, audio=audio, video=video, resume_session=None,
                                               red=identity.red), meeting
                case p.Ping(t=t):
                    conn.send(p.Pong(t=t).encode())
                case p.Answer(to=to, sdp=sdp, to_session=session) if link is not None and to == RELAY_ID \
                        and session == link.server.session:
                    link.answer(sdp)
                case p.Candidate(to=to, candidate=candidate, to_session=session) if link is not None \
                        and to == RELAY_ID and session == link.server.session:
                    link.candidate(candidate)
                case p.Leave():
                    conn.close_soon(CloseCode.NORMAL, "left")
                    return None
                case p.Answer() | p.Candidate():
                    pass  # for a warm link this socket no longer has
                case _:
                    conn.send(p.Error(code="not_joined", message="Bạn chưa vào phòng họp.", ref=message.TYPE).encode())

    def _login(self, session: Session, login: LoginRef | LoginKey, now: dt.datetime) -> LoginRef | None:
        """The live login session, now (the nonce and presence are written after this)."""
        limits = self.config.session_limits
        if isinstance(login, LoginKey):
            row = sessions.find(session, login.key, now=now, limits=limits, address=login.address)
            return LoginRef(row.id, row.account_id) if row is not None else None
        return login if sessions.live_ids(session, {login.session_id}, now=now, limits=limits) else None

    def _authorise(self, session: Session, key: LoginRef | LoginKey, grant: JoinGrant, meeting_id: int,
                   device: str, now: dt.datetime) -> tuple[Identity, dict[str, Any]]:
        login = self._login(session, key, now)
        if login is None:
            raise Refusal("auth_failed", EXPIRED)
        if grant.account_id != login.account_id or grant.session_id != login.session_id:
            raise Refusal("auth_failed", NOT_FOR_YOU)
        account = session.get(Account, login.account_id)
        if account is None or not account.is_active:
            raise Refusal("auth_failed", EXPIRED)
        if account.member_id != grant.member_id:
            raise Refusal("auth_failed", "Mã tham gia không khớp với tài khoản.")
        decision = self.admissions.decide(session, account, login.session_id, meeting_id, device,
                                          now.astimezone(LOCAL_TZ).date())
        refusal = decision if isinstance(decision, RoomRefusal) else decision.refusal_open
        if refusal is not None:
            raise Refusal.of(refusal)
        assert isinstance(decision, Admission)
        return _identity(decision, account, login.session_id), dict(decision.meeting)

    async def _read_loop(self, websocket: WebSocket, conn: Connection) -> None:
        bucket = TokenBucket(self.config.rate, self.config.burst)
        dropped = 0
        warned_at = 0.0
        heartbeat = False
        while websocket.application_state == WebSocketState.CONNECTED and not conn.closed:
            try:
                frame = await asyncio.wait_for(self._receive_text(websocket),
                                               timeout=HEARTBEAT_TIMEOUT if heartbeat else None)
            except TimeoutError:
                conn.close_soon(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                return
            if not bucket.take():
                dropped += 1
                if dropped > self.config.flood_limit:
                    refuse(conn, Refusal("flooding", "Gửi quá nhiều thông điệp; kết nối bị đóng."))
                    return
                now = time.monotonic()
                if now - warned_at > 1.0:
                    warned_at = now
                    conn.send(p.Error(code="rate_limited", message="Gửi quá nhanh; một số thông điệp bị bỏ qua.").encode())
                continue
            dropped = 0
            try:
                message = p.decode(frame)
                heartbeat = heartbeat or isinstance(message, p.Ping)
                await self.hub.dispatch(conn, message)
            except p.ProtocolError as exc:
                reject(conn, exc)
                if exc.fatal:
                    return
