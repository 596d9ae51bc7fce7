"""``create_app(settings)``: the single composition point of the service."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, WebSocketRoute

from meetings.base import utcnow
from realtime import tokens
from realtime.broker import Broker, LocalBroker, RedisBroker
from realtime.hub import RoomHub
from realtime.rooms import Identity, RoomSettings
from realtime.signalling import RawSendMiddleware, SignallingConfig, SignallingEndpoint

from . import logs
from .assets import VersionedStaticFiles, gzip_middleware_options
from .config import Settings
from .db import Database, make_engine
from .mailer import notice_loop
from .routes import all_routes
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

    def ice_servers(identity: Identity) -> list[dict]:  # type: ignore[type-arg]
        return tokens.ice_servers(settings.ICE_SERVERS, settings.TURN_SECRET, identity.participant_id,
                                  settings.TURN_TTL)

    def join_token(meeting_id: int, identity: Identity) -> str:
        return tokens.issue_join_token(settings.secret_key, tokens.JoinGrant(
            meeting_id=meeting_id, account_id=identity.account_id, member_id=identity.member_id,
            device=identity.device))

    broker: Broker = (RedisBroker(settings.REDIS_URL, prefix=settings.REDIS_PREFIX) if settings.REDIS_URL
                      else LocalBroker())
    turn = any(url.startswith(("turn:", "turns:")) for url in settings.ICE_SERVERS) and settings.TURN_SECRET
    hub = RoomHub(db, clock, RoomSettings(
        grace_seconds=settings.ROOM_GRACE_SECONDS, ice_servers=ice_servers,
        ice_transport_policy=settings.ICE_TRANSPORT_POLICY,
        # Credentials in a participant's hands always have at least half their lifetime left.
        ice_refresh_seconds=max(settings.TURN_TTL / 2, 1.0) if turn else None,
        relay_after=settings.RELAY_VIDEO_SENDERS,
        join_token=join_token,
    ), broker=broker)
    signalling = SignallingEndpoint(
        hub, db, SignallingConfig(secret_key=settings.secret_key, allowed_origins=settings.allowed_origins), clock
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

    static = VersionedStaticFiles(STATIC_DIR)
    app = Starlette(
        routes=[
            *all_routes(),
            WebSocketRoute("/ws/meetings/{meeting_id:int}", signalling.handle, name="room_ws"),
            Mount("/static", static, name="static"),
        ],
        middleware=[
            Middleware(RawSendMiddleware),
            # HTTP only (WebSocket scopes pass through untouched); text only (app/assets.py).
            Middleware(GZipMiddleware, **gzip_middleware_options()),
            Middleware(logs.RequestLogMiddleware, enabled=settings.LOG_REQUESTS),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                session_cookie="chibo_session",
                max_age=settings.SESSION_MAX_AGE,
                same_site="lax",
                https_only=settings.COOKIE_SECURE,
            ),
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
    app.state.rooms = hub
    #: Set after each pass of the notice job (lets tests wait for it without sleeping).
    app.state.notice_pass = threading.Event()
    return app
