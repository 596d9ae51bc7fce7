"""Fixtures shared by the whole suite.

* ``database`` is parametrised over the backends: SQLite always, PostgreSQL when
  DATABASE_URL points at one (CI sets it). Every test gets empty, migrated tables.
* ``clock`` is the app's notion of now; tests move it instead of sleeping.
* With CI=true a skipped test fails: in CI the browser, PostgreSQL and Redis tests must run.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.factory import create_app
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import accounts
from tests.support.databases import PostgresSchema, SqliteTemplate, backends, postgres_url
from tests.support.web import login
from tests.support.world import PASSWORD, World, build_world

pytest_plugins = ["tests.support.room_fixtures", "tests.support.turn"]

# Real Argon2id, with cost parameters that keep a suite of thousands of logins fast.
accounts.configure_hashing(time_cost=1, memory_cost=1024)

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"Skipped in CI, which must run every test: {reason}"


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not postgres_url():
        raise pytest.UsageError("CI=true needs DATABASE_URL=postgresql://… so the suite also runs on PostgreSQL")


#: The user property of a test that would also have run on PostgreSQL.
SQLITE_ONLY = "sqlite_only"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not postgres_url():
        for item in items:
            if "backend" in getattr(item, "fixturenames", ()):
                item.user_properties.append((SQLITE_ONLY, True))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    """A local run without DATABASE_URL leaves out every PostgreSQL variant: say so, so
    that a green run is not mistaken for one that covered both databases. (Counted from the
    reports, which carry the mark from wherever the test ran: pytest-xdist workers too.)"""
    left_out = len({report.nodeid for reports in terminalreporter.stats.values() for report in reports
                    if (SQLITE_ONLY, True) in getattr(report, "user_properties", ())})
    if left_out:
        terminalreporter.write_sep("-", "PostgreSQL variants not run", yellow=True)
        terminalreporter.write_line(
            f"{left_out} database test(s) ran on SQLite only: DATABASE_URL is not set to a PostgreSQL URL. "
            "Set DATABASE_URL=postgresql://127.0.0.1/test to run them on PostgreSQL too (CI always does).",
            yellow=True)


class Clock:
    """A settable clock; starts at 10:00 on 27 November 2026, Vietnam time."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 10, 0, tzinfo=LOCAL_TZ).astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    def set_local(self, *args: int) -> None:
        self.now = dt.datetime(*args, tzinfo=LOCAL_TZ).astimezone(dt.UTC)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(LOCAL_TZ).date()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate.create(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema | None]:
    url = postgres_url()
    if url is None:
        yield None
        return
    schema = PostgresSchema.create(url)
    yield schema
    schema.drop()


@pytest.fixture(params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database(
    backend: str,
    tmp_path: Path,
    sqlite_template: SqliteTemplate,
    postgres_schema: PostgresSchema | None,
) -> Iterator[Database]:
    if backend == "sqlite":
        db = sqlite_template.fresh(tmp_path)
    else:
        assert postgres_schema is not None
        db = postgres_schema.fresh()
    yield db
    db.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path, sqlite_template: SqliteTemplate) -> Iterator[Database]:
    """For tests whose subject is not the database (real-time, browser): SQLite only."""
    db = sqlite_template.fresh(tmp_path)
    yield db
    db.dispose()


@pytest.fixture
def session(database: Database) -> Iterator:  # type: ignore[type-arg]
    with database.session() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {},
        DATA_DIR=str(tmp_path / "var"),
        SECRET_KEY="test-secret-key-0123456789",
        LOG_REQUESTS=False,
        LOG_LEVEL="WARNING",
        # Tests run the notice job themselves, at the clock's time.
        NOTICE_INTERVAL=0,
    )


@pytest.fixture
def world(database: Database) -> World:
    with database.session() as s:
        return build_world(s)


@pytest.fixture
def app(settings: Settings, database: Database, clock: Clock):  # type: ignore[no-untyped-def]
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def client_as(app, world: World) -> Iterator[Callable[[str], TestClient]]:  # type: ignore[no-untyped-def]
    """A logged-in client for one of the world's accounts."""
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        c = TestClient(app, base_url="http://127.0.0.1:8000")
        c.__enter__()
        clients.append(c)
        login(c, username, PASSWORD)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture(scope="session")
def smtp():  # type: ignore[no-untyped-def]
    """One real SMTP server on loopback for the session; tests clear its inbox."""
    from tests.support.smtp import smtp_server

    with smtp_server() as server:
        yield server


@pytest.fixture
def inbox(smtp):  # type: ignore[no-untyped-def]
    with smtp.inbox.lock:
        smtp.inbox.messages.clear()
    return smtp.inbox
