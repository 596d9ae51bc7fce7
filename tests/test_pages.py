"""The roster pages through HTTP: forms, clear errors, nothing lost."""

from sqlalchemy import func, select

from meetings.organisation.members import Member, MemberPeriod
from tests.support.web import post


def counts(database):
    with database.session() as s:
        return (s.scalar(select(func.count()).select_from(Member)),
                s.scalar(select(func.count()).select_from(MemberPeriod)))


def test_cell_roster_shows_members_periods_and_counts(world, client_as):
    page = client_as("sec_a").get(f"/cells/{world.id('A')}").text
    assert "Chi bộ thôn An Lạc" in page
    assert "Đảng viên Chi bộ" not in page  # no template leftovers
    for name in ("Nguyễn Văn Ấn", "Trần Thị Bích Ngọc", "Lê Hoàng Dũng", "Phạm Thị Hường"):
        assert name in page
    assert "Đi làm ăn xa: TP. Hồ Chí Minh" in page
    assert "+ Thêm đảng viên" in page
    assert "<dt>Dự bị</dt><dd>1</dd>" in page and "<dt>Đi làm ăn xa</dt><dd>1</dd>" in page


def test_add_member_through_the_form(world, client_as):
    sec = client_as("sec_a")
    r = post(sec, f"/cells/{world.id('A')}/members/new", {
        "full_name": "Đặng Thùy Trâm", "birth_date": "1992-11-26", "admitted_on": "2020-09-02",
        "status": "official", "card_number": "48777001", "phone": "0905 111 222",
    })
    assert r.status_code == 303
    page = sec.get(r.headers["location"]).text
    assert "Đặng Thùy Trâm" in page and "0905111222" in page and "Đã thêm đảng viên" in page


def test_bad_member_form_is_refused_in_vietnamese_and_keeps_what_was_typed(world, client_as, database):
    sec = client_as("sec_a")
    before = counts(database)
    r = post(sec, f"/cells/{world.id('A')}/members/new", {
        "full_name": "Người Thiếu Thẻ", "birth_date": "1990-01-01", "admitted_on": "2099-01-01", "status": "official",
    })
    assert r.status_code == 400
    assert "Ngày vào Đảng không thể ở tương lai" in r.text
    assert "Đảng viên chính thức phải có số thẻ" in r.text
    assert 'value="Người Thiếu Thẻ"' in r.text
    assert counts(database) == before


def test_overlapping_period_form_gives_a_clear_error_and_saves_nothing(world, client_as, database):
    sec = client_as("sec_a")
    a4 = world.id("a4")  # away since 1 March 2026, open-ended
    before = counts(database)
    r = post(sec, f"/members/{a4}/periods/new", {"kind": "away", "start_on": "2026-06-01", "place": "Bình Dương"})
    assert r.status_code == 400
    assert "trùng với giai đoạn đã có (01/03/2026 – nay)" in r.text
    assert counts(database) == before
    # Close the first period, then the new one fits.
    period_id = None
    page = sec.get(f"/members/{a4}").text
    import re
    period_id = re.search(r'/periods/(\d+)/edit', page).group(1)
    r = post(sec, f"/periods/{period_id}/edit", {"kind": "away", "start_on": "2026-03-01", "end_on": "2026-05-31",
                                                 "place": "TP. Hồ Chí Minh"})
    assert r.status_code == 303
    r = post(sec, f"/members/{a4}/periods/new", {"kind": "away", "start_on": "2026-06-01", "place": "Bình Dương"})
    assert r.status_code == 303
    assert "01/06/2026 – nay" in sec.get(f"/members/{a4}").text


def test_exempt_period_form_and_its_effect_on_the_roster(world, client_as):
    sec = client_as("sec_a")
    a2 = world.id("a2")
    r = post(sec, f"/members/{a2}/periods/new", {"kind": "exempt", "start_on": "2026-10-01"})
    assert r.status_code == 400 and "số quyết định" in r.text
    r = post(sec, f"/members/{a2}/periods/new", {"kind": "exempt", "start_on": "2026-10-01",
                                                 "decision_number": "07-NQ/CB", "reason": "Ốm dài ngày",
                                                 "exempt_kind": "full"})
    assert r.status_code == 303
    roster = sec.get(f"/cells/{world.id('A')}").text
    assert "<dt>Miễn sinh hoạt</dt><dd>1</dd>" in roster


def test_delete_period_is_logged(world, client_as):
    sec = client_as("sec_a")
    page = sec.get(f"/members/{world.id('a4')}").text
    import re
    period_id = re.search(r'/periods/(\d+)/edit', page).group(1)
    assert post(sec, f"/periods/{period_id}/delete").status_code == 303
    log = sec.get(f"/cells/{world.id('A')}/log").text
    # A sentence with a link to the member, not the action's code; the details keep the values.
    assert "period.delete" not in log and "MemberPeriod" not in log
    a4 = world.id("a4")
    assert f'xóa giai đoạn “Đi làm ăn xa” của <a href="/members/{a4}">Phạm Thị Hường</a>' in log
    assert "Địa điểm: <del>TP. Hồ Chí Minh</del>" in log


def test_secretary_creates_an_account_and_the_member_must_change_password(app, world, client_as):
    from starlette.testclient import TestClient

    from tests.support.web import csrf_of

    sec = client_as("sec_a")
    r = post(sec, f"/members/{world.id('a3')}/account", {"username": "dung.le"})
    assert r.status_code == 200 and "Mật khẩu tạm" in r.text
    import re
    password = re.search(r'class="mono big">([^<]+)<', r.text).group(1)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        token = csrf_of(c)
        r = c.post("/login", data={"username": "dung.le", "password": password, "csrf_token": token},
                   follow_redirects=False)
        assert r.headers["location"] == "/password"
        assert c.get(f"/cells/{world.id('A')}", follow_redirects=False).headers["location"] == "/password"


def test_error_pages_are_vietnamese(client, world, client_as):
    r = client.get("/khong-co-trang-nay")
    assert r.status_code == 404 and "Không tìm thấy trang" in r.text and 'lang="vi"' in r.text
    sec = client_as("sec_a")
    assert sec.get("/members/999999").status_code == 404
    r = sec.get(f"/members/{world.id('a2')}/periods/new?kind=nghi-phep")
    assert r.status_code == 400 and "Loại giai đoạn không hợp lệ" in r.text
    r = client.put("/login")
    assert r.status_code == 405 and "Phương thức không được hỗ trợ" in r.text


def test_server_error_page_is_vietnamese_and_logged(app, world, client_as, caplog, monkeypatch):
    from meetings.organisation import eligibility

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(eligibility, "electorate", broken)
    from starlette.testclient import TestClient

    from tests.support.web import login
    from tests.support.world import PASSWORD

    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as c:
        login(c, "sec_a", PASSWORD)
        r = c.get(f"/cells/{world.id('A')}")
    assert r.status_code == 500
    assert "Lỗi hệ thống" in r.text and "boom" not in r.text
