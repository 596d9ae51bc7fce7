"""An absence request end to end in a phone-sized Chromium: member asks, secretary decides.

Bad input is refused on the page with a clear message: a reason of only spaces (the browser's
own ``required`` check lets it through), a meeting of another cell, and a request once the
meeting is over.
"""

import datetime as dt
import os
from pathlib import Path

from app.config import Settings
from app.factory import create_app
from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning import schedules
from meetings.planning.meetings import MeetingKind
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.support.live import live_server
from tests.support.world import PASSWORD, build_world

ARTIFACTS = Path(os.environ.get("SCREENSHOT_DIR", "var/screenshots"))


def test_absence_request_in_the_browser(sqlite_database, tmp_path, clock):
    from playwright.sync_api import sync_playwright

    with sqlite_database.session() as s:
        world = build_world(s)
        ids = {key: schedules.create_adhoc(
            s, Actor.system("test"), s.get(Organisation, world.id(key)), kind=MeetingKind.REGULAR,
            starts_at=dt.datetime(2026, 12, 5, 19, 30, tzinfo=LOCAL_TZ), now=clock.now, place="Nhà văn hóa").id
            for key in ("A", "B")}
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path), SECRET_KEY="k" * 32, LOG_REQUESTS=False,
                                 NOTICE_INTERVAL=0)
    app = create_app(settings, database=sqlite_database, clock=clock)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def login(username):
            context = browser.new_context(viewport=PHONE, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            return page

        member = login("mem_a")
        meeting_url = f"{base}/meetings/{ids['A']}"
        member.goto(meeting_url)
        member.fill("textarea[name=reason]", "   ")
        member.get_by_role("button", name="Gửi đơn xin vắng").click()
        assert "Cần ghi lý do xin vắng." in member.inner_text("[role=alert]")
        member.fill("textarea[name=reason]", "Đi công tác Đà Nẵng")
        member.get_by_role("button", name="Gửi đơn xin vắng").click()
        body = member.inner_text("body")
        assert "Đã gửi đơn xin vắng" in body and "Chờ bí thư xem xét" in body
        member.screenshot(path=str(ARTIFACTS / "absence-member.png"), full_page=True)
        assert member.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # Another cell's meeting does not exist for this member.
        response = member.goto(f"{base}/meetings/{ids['B']}")
        assert response.status == 404 and "Không tìm thấy trang" in member.inner_text("body")

        secretary = login("sec_a")
        secretary.goto(meeting_url)
        assert "“Đi công tác Đà Nẵng”" in secretary.inner_text("#don-xin-vang")
        secretary.get_by_role("button", name="Không chấp thuận", exact=True).click()
        assert "cần ghi rõ lý do" in secretary.inner_text("[role=alert]")
        secretary.fill("#don-xin-vang input[name=note]", "Đồng ý, nhớ gửi đảng phí qua tổ trưởng")
        secretary.get_by_role("button", name="Chấp thuận", exact=True).click()
        assert "Đã ghi quyết định về đơn xin vắng" in secretary.inner_text("body")
        secretary.screenshot(path=str(ARTIFACTS / "absence-secretary.png"), full_page=True)

        member.goto(meeting_url)
        body = member.inner_text("#xin-vang")
        assert "Đã chấp thuận (vắng có lý do)" in body and "nhớ gửi đảng phí" in body

        # The meeting is held and recorded; afterwards nobody can ask to be absent any more.
        clock.set_local(2026, 12, 5, 22, 0)
        secretary = login("sec_a")  # eight days later: a new login (sessions end after 4 idle hours)
        secretary.goto(meeting_url)
        secretary.fill("form[action$='/actual'] input[name=start]", "19:30")
        secretary.fill("form[action$='/actual'] input[name=end]", "21:40")
        secretary.get_by_role("button", name="Ghi thời gian thực tế").click()
        assert "Đã ghi thời gian thực tế" in secretary.inner_text("body")
        away = login("away_a")
        away.goto(meeting_url)
        text = away.inner_text("#xin-vang")
        assert "Cuộc họp đã kết thúc, không thể xin vắng nữa." in text
        assert away.locator("textarea[name=reason]").count() == 0
        browser.close()
