"""The pages around the room, in Chromium at 390×844 (a phone) and 1280×800, on the demo:

* the README's demo path, click by click: the secretary starts the meeting from the start
  page, a member far away finds "Chi bộ đang họp" with "Tham gia" on hers;
* no dead ends: members get no "Điểm danh" tab, the yearly record and the audit offer next
  year, a member at home sees the meeting in progress and where to go;
* no developer text: the change log reads as sentences with links, pages and filters, and
  checks its hash chain by itself; a CSV in the wrong encoding gets one clear message;
* the favicon and the web app manifest are there (no failed request on any page visited).

Screenshots of each in var/screenshots/ (phone-*.png, desktop-*.png).
"""

from __future__ import annotations

import re
import unicodedata

from app.demo import DEMO_PASSWORD
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS
from tests.browser.test_screenshots import ARTIFACTS

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _cp1258(text: str) -> bytes:
    out = b""
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            base, *marks = unicodedata.normalize("NFD", char)
            out += unicodedata.normalize("NFC", base + "".join(m for m in marks if m in "\u031b\u0306\u0302")).encode("cp1258")
            out += "".join(m for m in marks if m not in "\u031b\u0306\u0302").encode("cp1258")
    return out


def test_pages_around_the_room_on_a_phone_and_a_desktop(demo):
    from playwright.sync_api import sync_playwright

    base, ids = demo
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)

        def login(username, viewport):
            context = browser.new_context(viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            page = context.new_page()
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/import") else None)
            page.on("dialog", lambda d: d.accept())
            page.goto(f"{base}/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            return page

        def shot(page, name):
            kind = "phone" if page.viewport_size["width"] < 500 else "desktop"
            page.screenshot(path=str(ARTIFACTS / f"{kind}-{name}.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], name

        # The README's path for the secretary, on a phone.
        bithu = login("bithu", PHONE)
        next_up = bithu.locator(".next-meeting")
        assert "Cuộc họp tới:" in next_up.inner_text() and "19:30" in next_up.inner_text()
        shot(bithu, "home-secretary")
        next_up.get_by_role("link", name=ids["title"]).click()
        bithu.get_by_role("link", name="Tham gia trực tuyến").click()
        bithu.get_by_role("button", name="Bắt đầu cuộc họp").click()
        bithu.get_by_role("button", name="Vào phòng với camera").click()
        bithu.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=60000)
        bithu.get_by_role("button", name="Rời phòng").click()

        # The away member: the banner on her start page takes her in.
        divang = login("divang", PHONE)
        banner = divang.locator("#dang-hop")
        assert "Chi bộ đang họp" in banner.inner_text() and ids["title"] in banner.inner_text()
        shot(divang, "home-meeting-in-progress")
        banner.get_by_role("link", name="Tham gia").click()
        divang.get_by_role("button", name="Vào phòng với camera").click()
        divang.wait_for_function("() => window.chiboRoom && window.chiboRoom.me", timeout=60000)
        divang.get_by_role("button", name="Rời phòng").click()
        # Next year's record is one tap away.
        divang.goto(f"{base}/members/{ids['divang']}/record?year=2026")
        divang.get_by_role("link", name="2027 ›").click()
        assert "Hồ sơ sinh hoạt năm 2027" in divang.inner_text("h1")

        # A member at home: the meeting is on, but in person; and no "Điểm danh" tab.
        dangvien = login("dangvien", DESKTOP)
        banner = dangvien.locator("#dang-hop")
        assert "Chi bộ đang họp" in banner.inner_text()
        assert banner.get_by_role("link", name="Tham gia", exact=True).count() == 0
        assert "dự họp trực tiếp" in banner.inner_text()
        shot(dangvien, "home-member")
        dangvien.get_by_role("link", name="Xem cuộc họp").click()
        tabs = dangvien.locator("nav.tabs-nav").inner_text()
        assert "Điểm danh" not in tabs and "Biên bản" in tabs
        bithu.goto(f"{base}/meetings/{ids['meeting']}")
        assert "Điểm danh" in bithu.locator("nav.tabs-nav").inner_text()

        # The auditor's audit offers next year too.
        kiemtra = login("kiemtra", DESKTOP)
        kiemtra.goto(f"{base}/orgs/{ids['commune']}/audit?year=2026")
        kiemtra.get_by_role("link", name="2027 ›").click()
        assert "year=2027" in kiemtra.url and kiemtra.locator("h1").count() == 1

        # The change log: sentences with links, its own integrity check, pages and filters.
        for page in (bithu, kiemtra):
            page.goto(f"{base}/cells/{ids['cell']}/log")
            page.locator("#toan-ven .flash-success").wait_for(timeout=60000)
            check = page.inner_text("#toan-ven")
            assert "✓ Chuỗi mã băm toàn vẹn:" in check and "python -m app" not in check
            rows = page.locator(".log-sentence").all_inner_texts()
            assert len(rows) == 50 and not any(re.search(r"\b[a-z_]+\.[a-z_]+\b|#\d", r) for r in rows), rows[:5]
            assert page.locator(".log-sentence a").count() >= 50
            shot(page, "changelog")
        bithu.get_by_role("link", name="Cũ hơn ›").click()
        assert "page=2" in bithu.url and "Trang 2/" in bithu.inner_text(".pager")
        bithu.select_option("select[name=kind]", "attendance")
        bithu.select_option("select[name=member]", label="Phạm Văn Khánh")
        bithu.get_by_role("button", name="Lọc").click()
        rows = bithu.locator(".log-sentence").all_inner_texts()
        assert rows and all("Phạm Văn Khánh" in r for r in rows)
        assert all(re.search(r"(điểm danh|đảng phí|xin vắng)", r) for r in rows)

        # A CSV from old Excel (Windows-1258): one clear message, nothing garbled.
        bithu.goto(f"{base}/cells/{ids['cell']}/import")
        legacy = _cp1258("Họ và tên,Ngày sinh,Ngày vào Đảng,Trạng thái\nVõ Thị Sáu,01/01/1960,01/01/1990,chính thức\n")
        bithu.set_input_files("input[type=file]", files=[{"name": "ds.csv", "mimeType": "text/csv", "buffer": legacy}])
        bithu.get_by_role("button", name="Kiểm tra và nhập").click()
        error = bithu.inner_text("[role=alert]")
        assert "không được lưu bằng mã UTF-8" in error and "CSV UTF-8" in error
        assert "thiếu cột" not in bithu.inner_text("main") and "\ufffd" not in bithu.inner_text("main")
        shot(bithu, "import-not-utf8")

        # Favicon and manifest.
        icon = bithu.request.get(f"{base}/favicon.ico")
        assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
        manifest = bithu.request.get(base + bithu.get_attribute("link[rel=manifest]", "href")).json()
        assert manifest["name"] == "Chi bộ trực tuyến" and manifest["start_url"] == "/"
        for entry in manifest["icons"]:
            assert bithu.request.get(base + entry["src"]).status == 200
        browser.close()
    assert not failed, failed
