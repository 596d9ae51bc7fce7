"""Finding 12.10: wrong guesses slow the guesser, not the owner; the owner is told.

Five wrong guesses used to lock the real owner out for 15 minutes (a denial of service anyone
could run with the owner's username). Now waits grow per account *and address*; the account
as a whole (guesses spread over many addresses) waits at most a minute; the owner hears of
it in the app and by e-mail.
"""

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from meetings.organisation import accounts
from meetings.organisation.members import Member
from meetings.planning.notices import Notice
from tests.support.world import PASSWORD

GUESSER = ("198.51.100.9", 40000)
OWNER = ("203.0.113.5", 40000)


def browser(app, address):  # type: ignore[no-untyped-def]
    client = TestClient(app, base_url="http://127.0.0.1:8000", client=address)
    client.__enter__()
    return client


def attempt(client, username, password):  # type: ignore[no-untyped-def]
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)


def test_the_guesser_waits_longer_and_longer_the_owner_logs_in(app, world, clock, database):
    with database.session() as s:
        s.get(Member, world.id("a2")).email = "ngoc@example.vn"
    guesser, owner = browser(app, GUESSER), browser(app, OWNER)
    waits = []
    for _ in range(15):
        r = attempt(guesser, "mem_a", "doan-bua-1234")
        if r.status_code == 429:
            wait = int(r.headers["retry-after"])
            waits.append(wait)
            clock.advance(seconds=wait)
            r = attempt(guesser, "mem_a", "doan-bua-1234")
        assert r.status_code == 401
    # Each wrong guess past the third doubles the guesser's wait: 1 s, 2 s, 4 s, ... (15 min at most).
    assert waits == [min(2 ** k, 900) for k in range(len(waits))] and len(waits) == 12
    assert attempt(guesser, "mem_a", PASSWORD).status_code == 429  # still waiting, right password or not
    # The owner, elsewhere, waits at most a minute, and gets in.
    r = attempt(owner, "mem_a", PASSWORD)
    if r.status_code == 429:
        assert int(r.headers["retry-after"]) <= 60
        clock.advance(seconds=int(r.headers["retry-after"]))
        r = attempt(owner, "mem_a", PASSWORD)
    assert r.status_code == 303
    # ... and was told once, in the app and by e-mail, that someone was guessing.
    with database.session() as s:
        [notice] = s.scalars(select(Notice).where(Notice.event == "login_failures")).all()
        assert notice.member_id == world.id("a2") and notice.email == "ngoc@example.vn"
        assert "198.51.100.9" in notice.body and "vẫn đăng nhập được" in notice.body
    home = owner.get("/")
    assert "Có người đăng nhập sai nhiều lần" in home.text
    for c in (guesser, owner):
        c.__exit__(None, None, None)


def test_guesses_from_many_addresses_slow_the_account_by_a_minute_at_most(app, world, clock):
    for i in range(40):
        guesser = browser(app, (f"192.0.2.{i + 1}", 40000))
        r = attempt(guesser, "sec_a", "doan-bua-1234")
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) <= 60
            clock.advance(seconds=int(r.headers["retry-after"]))
            r = attempt(guesser, "sec_a", "doan-bua-1234")
        assert r.status_code == 401
        guesser.__exit__(None, None, None)
    owner = browser(app, OWNER)
    r = attempt(owner, "sec_a", PASSWORD)
    assert r.status_code in (303, 429)
    if r.status_code == 429:
        assert int(r.headers["retry-after"]) <= accounts.ACCOUNT_BACKOFF.cap.total_seconds()
    owner.__exit__(None, None, None)


def test_password_checks_run_two_at_a_time_and_a_flood_is_told_to_wait(app, world, monkeypatch):
    """Each Argon2id check takes 64 MiB: a burst of logins from many addresses (which the
    per-address backoff does not slow) must not take the server's memory."""
    monkeypatch.setattr(accounts, "HASH_WAIT", 0.05)
    held = [accounts._hash_slots.acquire(timeout=1) for _ in range(accounts.HASH_CONCURRENCY)]
    try:
        assert all(held)
        client = browser(app, OWNER)
        r = attempt(client, "mem_a", PASSWORD)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "Máy chủ đang bận" in r.text
    finally:
        for _ in held:
            accounts._hash_slots.release()
    assert attempt(client, "mem_a", PASSWORD).status_code == 303
    client.__exit__(None, None, None)
