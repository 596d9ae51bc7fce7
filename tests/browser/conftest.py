"""Browser tests: Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from app.config import Settings
from app.demo import load_demo
from app.factory import create_app
from meetings.organisation.accounts import Account
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting, MeetingKind
from tests.support.live import live_server

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    """One headless Chromium for a module's synchronous journeys (each test opens its own contexts)."""
    from playwright.sync_api import sync_playwright

    from scripts.screenshots import CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):  # set up before the function-scoped check above
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def demo(sqlite_database, tmp_path, clock):  # type: ignore[no-untyped-def]
    """The demo organisation as of the test clock's day, served live: (base URL, ids)."""
    with sqlite_database.session() as s:
        load_demo(s, clock.today)
        cell = s.scalar(select(Organisation).where(Organisation.code == "QT-CL-ANMY"))
        meeting = s.scalar(select(Meeting).where(Meeting.cell_id == cell.id, Meeting.remote_open.is_(True),
                                                 Meeting.kind == MeetingKind.REGULAR).order_by(Meeting.starts_at))
        divang = s.scalar(select(Account).where(Account.username == "divang"))
        ids = {"cell": cell.id, "commune": cell.parent_id, "meeting": meeting.id, "divang": divang.member_id,
               "title": meeting.title}
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path), SECRET_KEY="k" * 32, LOG_REQUESTS=False,
                                 NOTICE_INTERVAL=0)
    app = create_app(settings, database=sqlite_database, clock=clock)
    with live_server(app) as base:
        yield base, ids


