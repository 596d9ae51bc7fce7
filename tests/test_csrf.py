"""Every form needs its CSRF token: a POST without it gets 403 and changes nothing."""

import datetime as dt

from sqlalchemy import func, select

from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.organisation import members
from meetings.organisation.members import PeriodInput, PeriodKind
from tests.support.routes import concrete
from tests.support.world import schedule_objects


def test_every_post_without_csrf_token_is_403(app, world, client_as, database, settings):
    with database.session() as s:
        period = members.add_period(s, Actor.system("t"), s.get(members.Member, world.id("a2")),
                                    PeriodInput(kind=PeriodKind.AWAY, start_on=dt.date(2026, 1, 1), place="Huế")).id
    with database.session() as s:
        sched = schedule_objects(s, world, "A", "a3", settings.data_dir)
    admin = client_as("sec_a")
    with database.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    params = {"cell_id": world.id("A"), "member_id": world.id("a2"), "period_id": period, "org_id": world.id("A"),
              "motion_id": 1, "version": 1, "year": 2026, "comment_id": 1, "account_id": world.accounts["mem_a"], **sched}
    posts = concrete(app, params, methods=["POST"]) + [("POST", "/logout"), ("POST", "/password"),
                                                        ("POST", "/sessions/end-others"), ("POST", "/sessions/1/end")]
    assert len(posts) >= 8
    for _, url in posts:
        r = admin.post(url, data={"full_name": "Không Có Mã", "kind": "away", "start_on": "2026-01-01"},
                       follow_redirects=False)
        assert r.status_code == 403, url
        assert "CSRF" in r.text
        wrong = admin.post(url, data={"csrf_token": "gia-mao"}, follow_redirects=False)
        assert wrong.status_code == 403, url
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert admin.get("/", follow_redirects=False).status_code == 200  # still logged in
