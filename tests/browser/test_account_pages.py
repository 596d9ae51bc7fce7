"""Pages a member or a secretary uses alone, in Chromium on the demo (issue 16's journeys):

* a member changes the password on its page: the old one no longer logs in, the new one does;
* a secretary imports members from a CSV with a bad line: the page names the line and why in
  Vietnamese and imports nothing; the corrected file imports the member, who is then listed.
"""

from __future__ import annotations

import pytest

from app.demo import DEMO_PASSWORD

HEADER = "Họ và tên,Ngày sinh,Số thẻ đảng viên,Ngày vào Đảng,Trạng thái,Ngày chính thức,Ngày hết dự bị,Điện thoại,Email\n"
GOOD = "Trương Văn Nhập,12/03/1980,48099001,19/05/2010,chính thức,,,0912000111,\n"
BAD = "Đoàn Thị Sai,31/02/1990,48099002,03/02/2015,chính thức,,,,\n"


@pytest.fixture
def login(demo, chromium):  # type: ignore[no-untyped-def]
    """Log in through the login page in a fresh context; returns the page (still on the login
    page when the password is refused)."""
    base, _ = demo
    contexts = []

    def log_in(username: str, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def]
        context = chromium.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield log_in
    for context in contexts:
        context.close()


def test_a_member_changes_the_password(demo, login):
    base, _ = demo
    page = login("dangvien")
    assert page.url == f"{base}/"
    page.get_by_role("link", name="Mật khẩu").click()
    page.fill("input[name=current]", DEMO_PASSWORD)
    page.fill("input[name=password]", "mat-khau-moi-2026")
    page.fill("input[name=confirm]", "mat-khau-moi-2026")
    page.get_by_role("button", name="Lưu mật khẩu mới").click()
    page.wait_for_url(f"{base}/")
    assert "Đã đổi mật khẩu." in page.inner_text("body")

    old = login("dangvien", DEMO_PASSWORD)
    assert old.url.startswith(f"{base}/login")
    assert old.locator("input[name=password]").count() == 1
    new = login("dangvien", "mat-khau-moi-2026")
    assert new.url == f"{base}/"
    assert "Đăng xuất" in new.inner_text("body")


def test_a_csv_with_a_bad_line_imports_nothing_and_says_why(demo, login):
    base, ids = demo
    page = login("bithu")
    page.goto(f"{base}/cells/{ids['cell']}/import")
    page.set_input_files("input[name=file]", {"name": "danh-sach.csv", "mimeType": "text/csv",
                                              "buffer": (HEADER + GOOD + BAD).encode()})
    page.get_by_role("button", name="Kiểm tra và nhập").click()
    page.wait_for_load_state()
    errors = page.inner_text("ul.errors")
    assert "Dòng 3: Ngày sinh: “31/02/1990” không phải ngày hợp lệ" in errors and "Dòng 2:" not in errors
    body = page.inner_text("body")
    assert "Tệp có 1 lỗi; chưa nhập đảng viên nào." in body and "danh-sach.csv" in body
    page.goto(f"{base}/cells/{ids['cell']}")
    assert "Trương Văn Nhập" not in page.inner_text("body")

    page.goto(f"{base}/cells/{ids['cell']}/import")
    page.set_input_files("input[name=file]", {"name": "danh-sach.csv", "mimeType": "text/csv",
                                              "buffer": (HEADER + GOOD).encode()})
    page.get_by_role("button", name="Kiểm tra và nhập").click()
    page.wait_for_url(f"{base}/cells/{ids['cell']}")
    body = page.inner_text("body")
    assert "Đã nhập 1 đảng viên từ tệp danh-sach.csv." in body
    assert "Trương Văn Nhập" in body
