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
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from meetings.base import utcnow

from . import logs
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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("started", extra={"fields": {"database": db.engine.dialect.name}})
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
            if database is None:
                db.dispose()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_page(request, exc.status_code, exc.detail if exc.status_code not in (404, 405) else None)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_page(request, 500)

    app = Starlette(
        routes=[*all_routes(), Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")],
        middleware=[
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
    app.state.clock = clock
    #: Set after each pass of the notice job (lets tests wait for it without sleeping).
    app.state.notice_pass = threading.Event()
    return app
