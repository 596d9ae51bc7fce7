"""``create_app(settings)``: the single composition point of the service."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, WebSocketRoute

from meetings.foundation.base import utcnow
from meetings.organisation.sessions import SessionLimits
from realtime import tokens
from realtime.admission import AdmissionCache
from realtime.broker import Broker, LocalBroker, RedisBroker
from realtime.hub import RoomHub
from realtime.relay.nat import NatMapping
from realtime.rooms import Identity, RoomSettings
from realtime.signalling import RawSendMiddleware, SignallingConfig, SignallingEndpoint

from . import logs
from .assets import VersionedStaticFiles, gzip_middleware_options
from .config import Settings
from .db import Database, make_engine
from .headers import SecurityHeadersMiddleware
from .limits import RequestLimitsMiddleware, upload_routes
from .mailer import notice_loop
from .room_socket import RoomSocketMiddleware
from .routes import all_routes
from .routes.room import TOKEN_PATH
from .sessions import ServerSessionMiddleware
from .templating import make_environment
from .web import error_page

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger("chibo.app")


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
) -> Starlette:
    settings = settings or Settings.from_env()
    logs.configure(settings.LOG_LEVEL)
    db = database or Database(make_engine(settings.database_url))
    session_limits = SessionLimits(idle=dt.timedelta(seconds=settings.SESSION_IDLE_TIMEOUT),
                                   lifetime=dt.timedelta(seconds=settings.SESSION_MAX_AGE))

    def ice_servers(identity: Identity) -> list[dict[str, Any]]:
        return tokens.ice_servers(settings.ICE_SERVERS, settings.TURN_SECRET, identity.participant_id,
                                  settings.TURN_TTL)

    def join_token(meeting_id: int, identity: Identity) -> str:
        return tokens.issue_join_token(settings.secret_key, tokens.JoinGrant(
            meeting_id=meeting_id, account_id=identity.account_id, member_id=identity.member_id,
            device=identity.device, session_id=identity.login_session))

    broker: Broker = (RedisBroker(settings.REDIS_URL, prefix=settings.REDIS_PREFIX) if settings.REDIS_URL
                      else LocalBroker())
    turn = any(url.startswith(("turn:", "turns:")) for url in settings.ICE_SERVERS) and settings.TURN_SECRET
    hub = RoomHub(db, clock, RoomSettings(
        grace_seconds=settings.ROOM_GRACE_SECONDS, seen_interval_seconds=settings.ROOM_HEARTBEAT_SECONDS,
        ice_servers=ice_servers,
        ice_transport_policy=settings.ICE_TRANSPORT_POLICY,
        # Credentials in a participant's hands always have at least half their lifetime left.
        ice_refresh_seconds=max(settings.TURN_TTL / 2, 1.0) if turn else None,
        relay_after=settings.RELAY_VIDEO_SENDERS,
        relay_nat=(NatMapping(settings.RELAY_PUBLIC_IP, keep_private=settings.RELAY_KEEP_HOST_CANDIDATES)
                   if settings.RELAY_PUBLIC_IP else None),
        join_token=join_token,
    ), broker=broker, site_secret=settings.secret_key, session_limits=session_limits)
    admissions = AdmissionCache()  # the token route and the handshake keep the same decisions
    signalling = SignallingEndpoint(
        hub, db, SignallingConfig(secret_key=settings.secret_key, allowed_origins=settings.allowed_origins,
                                  session_limits=session_limits), clock, admissions
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        log.info("started", extra={"fields": {"database": db.engine.dialect.name, "process": broker.process_id}})
        job = None
        if settings.NOTICE_INTERVAL > 0:
            job = asyncio.create_task(notice_loop(db, settings, clock, app.state.notice_pass))
        try:
            yield
        finally:
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await hub.shutdown()
            if database is None:
                db.dispose()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_page(request, exc.status_code, exc.detail if exc.status_code not in (404, 405) else None)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_page(request, 500)

    routes = all_routes()
    static = VersionedStaticFiles(STATIC_DIR)
    app = Starlette(
        routes=[
            *routes,
            WebSocketRoute("/ws/meetings/{meeting_id:int}", signalling.handle, name="room_ws"),
            Mount("/static", static, name="static"),
        ],
        middleware=[
            # The room's sockets skip the rest (app/room_socket.py); others keep the raw send.
            Middleware(RoomSocketMiddleware, endpoint=signalling.handle),
            Middleware(RawSendMiddleware),
            # HTTP only (WebSocket scopes pass through untouched); text only (app/assets.py).
            Middleware(GZipMiddleware, **gzip_middleware_options()),
            Middleware(logs.RequestLogMiddleware, enabled=settings.LOG_REQUESTS),
            Middleware(SecurityHeadersMiddleware, https=settings.served_over_https),
            Middleware(ServerSessionMiddleware, db=db, clock=clock, limits=session_limits,
                       secret_key=settings.secret_key, secure=settings.COOKIE_SECURE, deferred=TOKEN_PATH),
            Middleware(RequestLimitsMiddleware, uploads=upload_routes(routes),
                       anonymous_max=settings.ANONYMOUS_MAX_BYTES, request_max=settings.REQUEST_MAX_BYTES,
                       upload_max=settings.UPLOAD_MAX_BYTES, body_timeout=settings.REQUEST_BODY_TIMEOUT,
                       min_rate=settings.REQUEST_BODY_MIN_RATE),
        ],
        exception_handlers={HTTPException: http_error, 500: server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.templates = make_environment()
    #: {{ static('room/room.js') }}: the versioned URL, cached for good (app/assets.py).
    app.state.templates.globals["static"] = static.url
    app.state.clock = clock
    app.state.session_limits = session_limits
    app.state.rooms = hub
    app.state.admissions = admissions
    #: Set after each pass of the notice job (lets tests wait for it without sleeping).
    app.state.notice_pass = threading.Event()
    return app
