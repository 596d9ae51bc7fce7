"""Engine and sessions. The app picks its driver from a plain URL."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from meetings.foundation.base import unit_of_work

from .config import make_private

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` → psycopg 3; ``sqlite:///`` stays as it is."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise SystemExit(f"Unsupported database URL: {parsed.drivername} (use sqlite:/// or postgresql://)")
    return parsed.render_as_string(hide_password=False)


def private_sqlite_file(url: str) -> None:
    """The SQLite file (and its WAL and shared-memory files, which SQLite creates with the
    file's own permissions) readable by the service's user only: 0600 (finding 12.10)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists() and path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is an empty database
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(Path(f"{path}{suffix}"), 0o600)


#: Worker threads that may hold a connection at once: anyio's default thread limiter, which
#: runs the views and ``Database.run``.
WORKER_THREADS = 40


def make_engine(url: str, **kwargs: Any) -> Engine:
    """The engine, with a pool that keeps a connection for every worker thread: under a rush
    (a province's members joining at 19:30, bench/join.py) the pool's default of 5 + 10
    overflow made threads queue for connections and opened and closed overflow ones all the
    time — on SQLite each new connection rereads the schema; on PostgreSQL it forks a backend."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        if make_url(url).database not in (None, "", ":memory:"):  # a file: QueuePool
            kwargs.setdefault("pool_size", WORKER_THREADS)
            kwargs.setdefault("max_overflow", WORKER_THREADS)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers proceed while one writer commits; foreign keys are off by
            # default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # PostgreSQL's own limit (max_connections, 100 by default) is shared by every process:
    # 20 kept, up to WORKER_THREADS at once.
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", WORKER_THREADS - 20)
    # Ours added to the options given in the URL (?options=…) or by the caller; the driver
    # takes connect_args over the URL's, so both are written here.
    connect_args = dict(kwargs.pop("connect_args", None) or {})
    in_url = make_url(url).query.get("options")
    given = [*([in_url] if isinstance(in_url, str) else in_url or []), connect_args.get("options", "")]
    connect_args["options"] = " ".join([*(o for o in given if o), CUSTOM_PLANS])
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


#: Every statement planned for its own parameters. psycopg prepares a statement on a
#: connection once it has run five times there, and PostgreSQL then plans it for any
#: parameters after five more runs (a *generic* plan) when that plan looks cheaper — which it
#: always does for the statements that bind a list of ids as one array (``sqltime.among``,
#: ``sqltime.id_pairs``): their row count unknown, PostgreSQL guesses 10 and picks nested
#: loops and sorts spilled to disk for what are a province's 3,000 cells. Measured with the
#: province's audit (bench/audit.py): its tallies took 120–170 ms from the tenth request on a
#: connection instead of 70–80. Planning each run costs a fraction of a millisecond; the
#: prepared statement still saves parsing it.
CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"


class Database:
    """The engine plus a session factory; ``run`` executes blocking work off the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> AbstractContextManager[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        return unit_of_work(self.sessions)

    def call(self, fn: Callable[[Session], T]) -> T:
        with self.session() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        return await anyio.to_thread.run_sync(self.call, fn)

    def dispose(self) -> None:
        self.engine.dispose()
