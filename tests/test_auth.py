"""Login, throttling, forced password change, sessions and CSRF."""

from sqlalchemy import select
from starlette.testclient import TestClient

from meetings.foundation.actors import Actor
from meetings.organisation import accounts
from meetings.organisation.accounts import Account
from tests.support.web import csrf_of, login, post
from tests.support.world import PASSWORD


def try_login(client, username, password):
    token = csrf_of(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)


def test_passwords_are_stored_only_as_argon2id_hashes(database, world):
    with database.session() as s:
        for account in s.scalars(select(Account)):
            assert account.password_hash.startswith("$argon2id$")
            assert PASSWORD not in account.password_hash


def test_login_and_logout(client, world):
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    r = try_login(client, "SEC_A ", PASSWORD)  # usernames are case- and space-insensitive
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "Xin chào, Nguyễn Văn Ấn" in client.get("/").text
    assert post(client, "/logout").status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused_in_vietnamese(client, world):
    r = try_login(client, "sec_a", "sai-mat-khau")
    assert r.status_code == 401
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in r.text


def test_repeated_wrong_logins_are_slowed_per_account_and_address(client, world, clock):
    for _ in range(accounts.PAIR_BACKOFF.free):
        assert try_login(client, "sec_a", "sai-mat-khau").status_code == 401
    r = try_login(client, "sec_a", PASSWORD)  # even the right password waits now, from here
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "Đăng nhập sai nhiều lần. Vui lòng chờ 1 giây" in r.text
    # Another account from the same address is not slowed by this account's failures.
    assert try_login(client, "sec_b", PASSWORD).status_code == 303
    clock.advance(seconds=1)
    assert try_login(client, "sec_a", PASSWORD).status_code == 303


def test_repeated_wrong_logins_are_slowed_per_address(client, world):
    for i in range(accounts.ADDRESS_BACKOFF.free):
        assert try_login(client, f"khong-ton-tai-{i}", "x").status_code == 401
    assert try_login(client, "sec_b", PASSWORD).status_code == 429


def test_account_created_by_a_secretary_must_change_password_first(app, database, world):
    with database.session() as s:
        accounts.create_account(s, Actor(world.accounts["sec_a"], "bí thư"), username="moi",
                                password="tam-thoi-12345", display_name="Người Mới", must_change_password=True)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = try_login(c, "moi", "tam-thoi-12345")
        assert r.headers["location"] == "/password"
        r = c.get(f"/cells/{world.orgs['A'].id}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/password"
        page = c.get("/password")
        assert "Bạn cần đặt mật khẩu mới" in page.text
        r = post(c, "/password", {"current": "tam-thoi-12345", "password": "ngan", "confirm": "ngan"})
        assert r.status_code == 400 and "ít nhất 10 ký tự" in r.text
        r = post(c, "/password", {"current": "tam-thoi-12345", "password": "doi-mat-khau-2026",
                                  "confirm": "doi-mat-khau-2026"})
        assert r.status_code == 303
        assert c.get("/", follow_redirects=False).status_code == 200


def test_password_change_ends_other_sessions(app, world, client_as):
    first = client_as("sec_b")
    second = client_as("sec_b")
    r = post(first, "/password", {"current": PASSWORD, "password": "mot-mat-khau-moi", "confirm": "mot-mat-khau-moi"})
    assert r.status_code == 303
    assert first.get("/", follow_redirects=False).status_code == 200
    assert second.get("/", follow_redirects=False).status_code == 303
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert try_login(c, "sec_b", PASSWORD).status_code == 401
        login(c, "sec_b", "mot-mat-khau-moi")


def test_login_form_without_csrf_token_is_refused(client, world):
    client.get("/login")
    r = client.post("/login", data={"username": "sec_a", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    assert "CSRF" in r.text and "Không có quyền truy cập" in r.text


def test_next_parameter_never_leaves_the_site(client, world):
    token = csrf_of(client)
    r = client.post("/login?next=https://evil.example/", data={"username": "sec_a", "password": PASSWORD,
                                                               "csrf_token": token}, follow_redirects=False)
    assert r.headers["location"] == "/"
    client.get("/login")
    post(client, "/logout")
    token = csrf_of(client)
    r = client.post("/login?next=/cells/1", data={"username": "sec_a", "password": PASSWORD,
                                                  "csrf_token": token}, follow_redirects=False)
    assert r.headers["location"] == "/cells/1"
