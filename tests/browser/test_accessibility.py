"""Accessibility over every page the five demo accounts reach (the room in session is checked
in test_room_phone.py): a crawl from each account's start page that follows every link,
runs axe-core with the WCAG 2.1 A/AA rules on each page it reaches, and fails on any serious
or critical violation. The same crawl checks that no link leads to an error page (a dead end)
and that nothing overflows a 390-px phone; then every kind of page is shown with its text at
200 % on a 1280-px screen, where nothing may overflow either (WCAG 1.4.4).

One page of each kind (its path with the numbers taken out, and its query's keys) per account
is enough to see every template in each role; a member's 60 meetings look alike. axe runs on
each kind once, as the first account to reach it shows it (the accounts go from the secretary,
whose pages carry the most controls, to the admin), which keeps the test within CI's budget;
every page of every account is still checked for dead ends and overflow.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import parse_qsl, urldefrag, urlsplit

from app.demo import DEMO_ACCOUNTS
from meetings.foundation.actors import Actor
from meetings.planning import meetings as mt
from meetings.planning.meetings import Meeting, MeetingStatus
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS
from tests.browser.axe import audit_sync

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
#: Downloads and actions, not pages.
SKIP = re.compile(r"(\.(csv|xlsx|ics|docx|pdf|png|jpg)$|^/logout|^/login|^/documents/|^/calendar/|^/static/)")
MAX_PAGES = 80  # per account; the demo's accounts reach 15–45 kinds of page


def kind_of(url: str) -> str:
    parts = urlsplit(url)
    keys = sorted({k for k, _ in parse_qsl(parts.query)})
    return re.sub(r"\d+", "N", parts.path) + ("?" + "&".join(keys) if keys else "")


def crawl(page, base: str, check) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """(url, status) for one page of every kind reachable from the start page by links;
    ``check(url, status)`` runs on each page as it is shown."""
    seen_kinds: set[str] = set()
    queue: deque[str] = deque([f"{base}/"])
    visited: list[tuple[str, int]] = []
    while queue and len(visited) < MAX_PAGES:
        url = queue.popleft()
        kind = kind_of(url)
        if kind in seen_kinds:
            continue
        seen_kinds.add(kind)
        response = page.goto(url)
        status = response.status if response else 0
        visited.append((url, status))
        check(url, status)
        hrefs = page.eval_on_selector_all(
            "a[href]", "as => as.map(a => new URL(a.getAttribute('href'), location.href).href)")  # SVG links too
        for href in hrefs:
            href = urldefrag(href)[0]
            if href.startswith(base) and not SKIP.search(urlsplit(href).path) and kind_of(href) not in seen_kinds:
                queue.append(href)
    return visited


def test_every_page_passes_axe_for_the_five_demo_accounts(demo, sqlite_database):
    from playwright.sync_api import sync_playwright

    base, ids = demo
    with sqlite_database.session() as s:  # a meeting in progress: the start pages' banner, the room page
        mt.change_status(s, Actor.system("test"), s.get(Meeting, ids["meeting"]), MeetingStatus.OPEN,
                         now=s.get(Meeting, ids["meeting"]).starts_at)
    problems: list[str] = []
    kinds: set[str] = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def login(account, viewport):  # type: ignore[no-untyped-def]
            context = browser.new_context(viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("input[name=username]", account.username)
            page.fill("input[name=password]", account.password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            return page

        page = browser.new_page(viewport=PHONE)
        page.goto(f"{base}/login")
        problems += [f"/login: {v}" for v in audit_sync(page)]
        page.close()
        for account in DEMO_ACCOUNTS:
            page = login(account, PHONE)

            def check(url: str, status: int, who: str = account.username) -> None:
                path = url.removeprefix(base)
                if status >= 400:
                    problems.append(f"{who} {path}: a link leads to HTTP {status}")
                    return
                if kind_of(url) not in kinds:  # axe once per kind of page, as the first account shows it
                    problems.extend(f"{who} {path}: {v}" for v in audit_sync(page))  # noqa: B023 - runs in the loop
                width = page.evaluate("document.documentElement.scrollWidth")  # noqa: B023
                if width > PHONE["width"]:
                    problems.append(f"{who} {path}: {width}px wide on a {PHONE['width']}-px phone")
                # Text at 200 % on a desktop: nothing cut off sideways.
                page.set_viewport_size(DESKTOP)  # noqa: B023
                page.evaluate("document.documentElement.style.fontSize = '200%'")  # noqa: B023
                width = page.evaluate("document.documentElement.scrollWidth")  # noqa: B023
                if width > DESKTOP["width"]:
                    problems.append(f"{who} {path}: {width}px wide with text at 200 % on a desktop")
                page.evaluate("document.documentElement.style.fontSize = ''")  # noqa: B023
                page.set_viewport_size(PHONE)  # noqa: B023
                kinds.add(kind_of(url))

            visited = crawl(page, base, check)
            assert len(visited) >= 5, (account.username, visited)
            page.context.close()
        browser.close()
    assert len(kinds) >= 40, sorted(kinds)
    assert not problems, "\n".join(problems)
