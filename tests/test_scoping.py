"""Who may see and change what: the single scoping function, tested through every route."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.organisation import members, scoping
from meetings.organisation.accounts import Account
from meetings.organisation.members import PeriodInput, PeriodKind
from tests.support.routes import concrete
from tests.support.web import client_token
from tests.support.world import hold_meeting, review_objects, schedule_objects


@pytest.fixture
def period_b(database, world):
    with database.session() as s:
        member = s.get(members.Member, world.members["b2"].id)
        return members.add_period(
            s, Actor.system("test"), member,
            PeriodInput(kind=PeriodKind.AWAY, start_on=dt.date(2026, 1, 1), place="Hà Nội"),
        ).id


@pytest.fixture
def period_a(database, world):
    return world_period(database, world, "a2")


def world_period(database, world, key):
    with database.session() as s:
        member = s.get(members.Member, world.members[key].id)
        return members.add_period(
            s, Actor.system("test"), member,
            PeriodInput(kind=PeriodKind.AWAY, start_on=dt.date(2026, 1, 1), place="Hà Nội"),
        ).id


@pytest.fixture
def sched_a(database, world, settings):
    with database.session() as s:
        objects = schedule_objects(s, world, "A", "a3", settings.data_dir)
        return {**objects, **hold_meeting(s, objects["meeting_id"])}


@pytest.fixture
def sched_b(database, world, settings):
    with database.session() as s:
        objects = schedule_objects(s, world, "B", "b3", settings.data_dir)
        return {**objects, **hold_meeting(s, objects["meeting_id"])}


@pytest.fixture
def review_a(database, world, settings):
    with database.session() as s:
        return review_objects(s, world, "a2", settings.data_dir)


@pytest.fixture
def review_b(database, world, settings):
    with database.session() as s:
        return review_objects(s, world, "b2", settings.data_dir)


def params_for(world, cell, member, period, sched):
    account = {"A": "mem_a", "B": "sec_b"}[cell]
    return {"cell_id": world.id(cell), "member_id": world.id(member), "period_id": period, "org_id": world.id(cell),
            "account_id": world.accounts[account], **sched}


def audit_count(database):
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


def request(client, method, url, token):
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return client.post(url, data={"csrf_token": token}, follow_redirects=False)


def test_scope_function(database, world):
    today = dt.date(2026, 11, 27)
    with database.session() as s:
        def scope(name):
            return scoping.scope_for(s, s.get(Account, world.accounts[name]), today)

        sec_a, aud_x, mem_a, admin = scope("sec_a"), scope("aud_x"), scope("mem_a"), scope("admin")
        assert sec_a.readable == {world.id("A")} and sec_a.manageable == {world.id("A")}
        assert aud_x.readable == {world.id(k) for k in ("X", "A", "B")} and aud_x.manageable == frozenset()
        assert mem_a.readable == {world.id("A")} and mem_a.manageable == frozenset()
        assert admin.readable is None and admin.can_manage(world.id("C"))


def test_secretary_of_a_gets_403_or_404_for_every_page_and_form_of_b(app, world, client_as, database, period_a, period_b,
                                                                     sched_a, sched_b, review_a, review_b):
    sec_a = client_as("sec_a")
    token = client_token(sec_a)
    before = audit_count(database)
    routes = concrete(app, params_for(world, "B", "b2", period_b, {**sched_b, **review_b}))
    assert len(routes) >= 15
    for method, url in routes:
        r = request(sec_a, method, url, token)
        assert r.status_code in (403, 404), f"{method} {url} → {r.status_code}"
        if r.status_code == 404:
            assert "Không tìm thấy trang" in r.text
    assert audit_count(database) == before
    # Control: the same routes on their own cell work, so the refusals above are about scope.
    for _method, url in concrete(app, params_for(world, "A", "a2", period_a, {**sched_a, **review_a}), methods=["GET"]):
        if url.startswith("/accounts/"):
            continue  # another account's sessions: admins only (tests/security/test_authorization.py)
        assert sec_a.get(url, follow_redirects=False).status_code in (200, 303), url


def test_auditor_of_commune_x_sees_x_cells_only(world, client_as):
    aud = client_as("aud_x")
    page = aud.get(f"/orgs/{world.id('X')}")
    assert page.status_code == 200
    assert "Chi bộ thôn An Lạc" in page.text and "Chi bộ thôn Bắc Sơn" in page.text
    assert "Cẩm Thủy" not in page.text
    assert aud.get(f"/orgs/{world.id('Y')}").status_code == 404
    assert aud.get(f"/orgs/{world.id('P')}").status_code == 404
    assert aud.get(f"/cells/{world.id('C')}").status_code == 404
    assert aud.get(f"/members/{world.id('c1')}").status_code == 404
    assert aud.get(f"/cells/{world.id('A')}").status_code == 200
    assert aud.get(f"/members/{world.id('a2')}").status_code == 200
    assert aud.get(f"/cells/{world.id('B')}/log").status_code == 200
    home = aud.get("/").text
    assert "Đảng ủy xã Xuân Hòa" in home and "Yên Bình" not in home


def test_auditor_is_read_only(app, world, client_as, database, period_a, sched_a, review_a):
    aud = client_as("aud_x")
    token = client_token(aud)
    before = audit_count(database)
    for method, url in concrete(app, params_for(world, "A", "a2", period_a, {**sched_a, **review_a}), methods=["POST"]):
        assert request(aud, method, url, token).status_code == 403, url
    for url in (f"/cells/{world.id('A')}/members/new", f"/members/{world.id('a2')}/edit",
                f"/periods/{period_a}/edit", f"/cells/{world.id('A')}/import"):
        assert aud.get(url).status_code == 403, url
    assert audit_count(database) == before


def test_member_cannot_edit_anything(app, world, client_as, database, period_a, sched_a, review_a):
    mem = client_as("mem_a")
    token = client_token(mem)
    before = audit_count(database)
    assert mem.get(f"/cells/{world.id('A')}").status_code == 200
    assert mem.get(f"/members/{world.id('a2')}").status_code == 200
    cell, meeting, a2 = world.id("A"), sched_a["meeting_id"], world.id("a2")
    # What a member may do: read their cell's pages, meetings, counts and adopted minutes, see
    # their own attendance, ask to be absent (here with no reason: refused as bad input), and
    # make their own calendar feed.
    allowed = {
        ("GET", f"/cells/{cell}"): 200, ("GET", f"/members/{a2}"): 200, ("GET", f"/orgs/{cell}"): 303,
        ("GET", f"/cells/{cell}/schedule"): 200, ("GET", f"/cells/{cell}/pilot"): 200,
        ("GET", f"/meetings/{meeting}"): 200, ("GET", f"/meetings/{meeting}/calendar.ics"): 200,
        ("GET", f"/documents/{sched_a['document_id']}"): 200,
        ("POST", f"/meetings/{meeting}/absence"): 400,
        ("POST", f"/members/{a2}/calendar-feed"): 303,
        # ... and decide whether cell-mates see their phone number.
        ("POST", f"/members/{a2}/phone-sharing"): 303,
        ("GET", f"/meetings/{meeting}/room"): 200, ("GET", f"/meetings/{meeting}/attendance.json"): 200,
        ("GET", f"/members/{a2}/attendance"): 200, ("GET", f"/meetings/{meeting}/votes"): 200,
        ("GET", f"/meetings/{meeting}/minutes"): 200, ("GET", f"/meetings/{meeting}/minutes/v/1"): 200,
        ("GET", f"/meetings/{meeting}/minutes/v/1.docx"): 200, ("GET", f"/meetings/{meeting}/minutes/v/1.pdf"): 200,
        ("GET", f"/cells/{cell}/minutes"): 200,
        # Their own yearly record and review: read, download their files, and submit the
        # self-assessment (here empty: refused as bad input).
        ("GET", f"/members/{a2}/record"): 200, ("GET", f"/members/{a2}/review/2026"): 200,
        ("GET", f"/members/{a2}/review/2026/file"): 200,
        ("GET", f"/members/{a2}/review/2026/comments/{review_a['comment_id']}/file"): 200,
        ("POST", f"/members/{a2}/review/2026/self"): 400,
    }
    for method, url in concrete(app, params_for(world, "A", "a2", period_a, {**sched_a, **review_a})):
        r = request(mem, method, url, token)
        assert r.status_code == allowed.get((method, url), 403), f"{method} {url} → {r.status_code}"
    assert audit_count(database) == before
    # And the cell of another commune does not exist for them.
    assert mem.get(f"/cells/{world.id('C')}").status_code == 404


def test_member_sees_private_fields_of_self_only(world, client_as):
    mem = client_as("mem_a")
    own = mem.get(f"/members/{world.id('a2')}").text
    other = mem.get(f"/members/{world.id('a1')}").text
    assert "Số thẻ đảng viên" in own and "Ngày sinh" in own
    assert "Số thẻ đảng viên" not in other and "Ngày sinh" not in other
