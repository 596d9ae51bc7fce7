"""Finding 12.2: a session ends when it is ended — everywhere, at once.

A cookie copied before logout kept working afterwards (pages, a room token, a WebSocket
``welcome``) and re-signed itself on every response for 7 days. Sessions now live on the
server: the cookie carries an opaque key, logout / password change / an admin's revoke end
the session for every copy of it and close its open meeting-room sockets, idle and absolute
timeouts are settings, and an account sees and ends its own sessions.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from meetings.foundation.audit import AuditEntry
from meetings.organisation.sessions import JoinTokenUse, LoginSession, use_join_nonce
from tests.support.rtc_client import RoomClient
from tests.support.web import login, post
from tests.support.world import PASSWORD

BASE = "http://127.0.0.1:8000"


def copy_of(app, client: TestClient) -> TestClient:  # type: ignore[no-untyped-def]
    """Another browser holding a copy of the client's cookies (a stolen or synced cookie)."""
    thief = TestClient(app, base_url=BASE)
    thief.__enter__()
    thief.cookies = client.cookies
    return thief


def test_a_copied_cookie_stops_working_at_logout(app, world, client_as, database, settings):
    owner = client_as("mem_a")
    thief = copy_of(app, owner)
    assert thief.get("/", follow_redirects=False).status_code == 200
    assert post(owner, "/logout").status_code == 303
    assert thief.get("/", follow_redirects=False).status_code == 303
    assert thief.get(f"/cells/{world.id('A')}", follow_redirects=False).headers["location"].startswith("/login")
    assert thief.get("/meetings/1/room/token", follow_redirects=False).status_code == 303
    with database.session() as s:
        [row] = s.scalars(select(LoginSession)).all()
        assert row.ended_at is not None and row.end_reason.value == "logout"
    thief.__exit__(None, None, None)


def test_the_cookie_is_an_opaque_key_set_once(client, world, database):
    page = client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "sec_a", "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    cookie = r.headers["set-cookie"]
    key = client.cookies["chibo_session"]
    assert f"Max-Age={7 * 24 * 3600}" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "." not in key and len(key) >= 40  # no signed payload, just a random key
    with database.session() as s:
        [row] = s.scalars(select(LoginSession)).all()
        assert key not in row.key_hash  # only its hash is stored
        assert row.account_id == world.accounts["sec_a"]
    # Later responses never renew it.
    for url in ("/", f"/cells/{world.id('A')}", "/sessions"):
        assert "chibo_session" not in client.get(url).headers.get("set-cookie", "")


def test_password_change_ends_every_other_session(app, world, client_as):
    first, second = client_as("sec_b"), client_as("sec_b")
    thief = copy_of(app, second)
    r = post(first, "/password", {"current": PASSWORD, "password": "mot-mat-khau-moi", "confirm": "mot-mat-khau-moi"})
    assert r.status_code == 303
    assert first.get("/", follow_redirects=False).status_code == 200
    assert second.get("/", follow_redirects=False).status_code == 303
    assert thief.get("/", follow_redirects=False).status_code == 303
    thief.__exit__(None, None, None)


def test_idle_timeout_and_absolute_lifetime(world, client_as, clock, database):
    member = client_as("mem_a")
    clock.advance(hours=3, minutes=59)
    assert member.get("/", follow_redirects=False).status_code == 200  # used: the idle clock restarts
    clock.advance(hours=3, minutes=59)
    assert member.get("/", follow_redirects=False).status_code == 200
    clock.advance(hours=4)
    assert member.get("/", follow_redirects=False).status_code == 303  # 4 hours unused
    busy = client_as("sec_a")
    for _ in range(43):  # used every 3 hours 55 minutes, for a week
        assert busy.get("/", follow_redirects=False).status_code == 200
        clock.advance(hours=3, minutes=55)
    assert busy.get("/", follow_redirects=False).status_code == 303  # 7 days after login
    with database.session() as s:
        reasons = {row.account_id: row.end_reason.value for row in s.scalars(select(LoginSession))}
    assert reasons == {world.accounts["mem_a"]: "idle", world.accounts["sec_a"]: "expired"}


def test_an_account_sees_and_ends_its_own_sessions(app, world, client_as, database):
    laptop = TestClient(app, base_url=BASE, headers={"user-agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/140.0"},
                        client=("203.0.113.7", 50000))
    laptop.__enter__()
    login(laptop, "mem_a", PASSWORD)
    phone = client_as("mem_a")
    page = phone.get("/sessions")
    assert page.status_code == 200
    assert "Chrome trên Windows" in page.text and "203.0.113.7" in page.text and "phiên này" in page.text
    with database.session() as s:
        laptop_session = s.scalars(select(LoginSession).where(LoginSession.address == "203.0.113.7")).one().id
    assert post(phone, f"/sessions/{laptop_session}/end").status_code == 303
    assert laptop.get("/", follow_redirects=False).status_code == 303
    assert phone.get("/", follow_redirects=False).status_code == 200
    assert "203.0.113.7" not in phone.get("/sessions").text
    # Nobody ends another account's session through this page.
    other = client_as("sec_a")
    with database.session() as s:
        mine = s.scalars(select(LoginSession).where(LoginSession.account_id == world.accounts["mem_a"],
                                                    LoginSession.ended_at.is_(None))).one().id
    assert post(other, f"/sessions/{mine}/end").status_code == 404
    assert phone.get("/", follow_redirects=False).status_code == 200
    laptop.__exit__(None, None, None)


def test_an_admin_revokes_an_accounts_sessions_a_secretary_cannot(world, client_as, database):
    member = client_as("mem_a")
    url = f"/accounts/{world.accounts['mem_a']}/sessions"
    secretary = client_as("sec_a")
    assert secretary.get(url).status_code == 403
    assert post(secretary, url + "/end").status_code == 403
    assert member.get("/", follow_redirects=False).status_code == 200
    admin = client_as("admin")
    assert "Phiên đăng nhập" in admin.get(f"/members/{world.id('a2')}").text
    assert admin.get(url).status_code == 200
    assert post(admin, url + "/end").status_code == 303
    assert member.get("/", follow_redirects=False).status_code == 303
    with database.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.sessions_revoke")).one()
        assert entry.actor_account_id == world.accounts["admin"]


# --------------------------------------------------------------------------- open WebSockets

async def joined(server, room_world, username: str = "sec_a") -> RoomClient:  # type: ignore[no-untyped-def]
    client = RoomClient(server, username, PASSWORD, room_world.meeting_id, media=False)
    await client.join()
    return client


async def http_post(client: RoomClient, url: str, data: dict | None = None):  # type: ignore[no-untyped-def]
    page = await client.http.get("/")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return await client.http.post(url, data={**(data or {}), "csrf_token": token})


@pytest.mark.anyio
async def test_logout_closes_the_open_room_socket_at_once(server, room_world):
    member = await joined(server, room_world, "away_a")
    thief = RoomClient(server, "away_a", PASSWORD, room_world.meeting_id, media=False)
    thief.http.cookies = member.http.cookies
    stolen_token = await thief.join_token()  # issued before the logout
    try:
        r = await http_post(member, "/logout")
        assert r.status_code == 303
        error = await member.wait_for("error", code="session_ended", timeout=5)
        assert "Phiên đăng nhập đã kết thúc" in error["message"]
        assert await member.wait_closed(timeout=5) == 4401
        # The copied cookie gets no token and no welcome with the token it had.
        assert (await thief.http.get(f"/meetings/{room_world.meeting_id}/room/token")).status_code == 303
        await thief.connect(token=stolen_token)
        assert (await thief.wait_for("error"))["code"] == "auth_failed"
        assert await thief.wait_closed() == 4401
    finally:
        await member.close()
        await thief.close()


@pytest.mark.anyio
async def test_password_change_and_revoke_close_other_sessions_sockets(server, room_world):
    in_room = await joined(server, room_world, "away_a")
    elsewhere = RoomClient(server, "away_a", PASSWORD, room_world.meeting_id, media=False)
    admin = RoomClient(server, "admin", PASSWORD, room_world.meeting_id, media=False)
    chair = await joined(server, room_world, "sec_a")
    try:
        await elsewhere.login()
        r = await http_post(elsewhere, "/password", {"current": PASSWORD, "password": "mat-khau-moi-2026",
                                                     "confirm": "mat-khau-moi-2026"})
        assert r.status_code == 303
        assert await in_room.wait_closed(timeout=5) == 4401
        # The admin revokes the chair's sessions: the chair's socket closes too.
        await admin.login()
        r = await http_post(admin, f"/accounts/{room_world.world.accounts['sec_a']}/sessions/end")
        assert r.status_code == 303
        assert (await chair.wait_for("error", code="session_ended", timeout=5))
        assert await chair.wait_closed(timeout=5) == 4401
    finally:
        for c in (in_room, elsewhere, admin, chair):
            await c.close()


@pytest.fixture
def short_sessions(room_settings, monkeypatch):  # type: ignore[no-untyped-def]
    import realtime.hub

    room_settings.values["SESSION_MAX_AGE"] = 2
    monkeypatch.setattr(realtime.hub, "SESSION_CHECK_SECONDS", 0.2)
    return room_settings


@pytest.mark.anyio
async def test_a_socket_closes_when_its_session_reaches_its_lifetime(short_sessions, server, room_world):
    member = await joined(server, room_world, "away_a")
    try:
        assert (await member.wait_for("error", code="session_ended", timeout=6))
        assert await member.wait_closed(timeout=5) == 4401
    finally:
        await member.close()



def test_a_join_token_nonce_opens_one_connection_and_is_forgotten_after_its_memory(database):
    """Finding 12.6, on each database the service runs on: the nonce is written with
    ``ON CONFLICT DO NOTHING`` (no savepoint), so its second use must still read as used."""
    now = dt.datetime(2026, 12, 5, 12, 30, tzinfo=dt.UTC)
    memory = dt.timedelta(seconds=240)
    with database.session() as s:
        assert use_join_nonce(s, "n-1", now=now, keep_for=memory)
        assert use_join_nonce(s, "n-2", now=now, keep_for=memory)
    with database.session() as s:
        assert not use_join_nonce(s, "n-1", now=now + dt.timedelta(seconds=100), keep_for=memory)
    with database.session() as s:  # past the memory the old nonce is gone (its token expired long ago)
        assert use_join_nonce(s, "n-1", now=now + dt.timedelta(seconds=300), keep_for=memory)
        assert s.scalar(select(func.count()).select_from(JoinTokenUse)) == 1
