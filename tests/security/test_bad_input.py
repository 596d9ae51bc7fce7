"""Finding 12.8: bad input gets a 4xx (or a typed ``error`` frame), never a 500.

Ids of 2^63 and more in a path (SQLite cannot even compare them: OverflowError) and a
100,000-deep JSON body crashed requests. Every route with a numeric path parameter is probed
with such ids, every form with numbers no column can hold, and the room with both.
"""

import json
import re

import pytest
from sqlalchemy import func, select
from starlette.routing import Route
from starlette.testclient import TestClient

from meetings.foundation.audit import AuditEntry
from tests.support.routes import PARAM
from tests.support.web import client_token, login
from tests.support.world import PASSWORD, hold_meeting, review_objects, schedule_objects

HUGE = [2**63, 2**64 + 7, 10**40]
#: Every field name the site's forms use, and the rule form's prefixed ones.
FIELDS = set(re.findall(r'name="([a-z_]+)"', "".join(
    p.read_text() for p in __import__("pathlib").Path("templates").rglob("*.html"))))
FIELDS |= {f"{prefix}{name}" for prefix in ("", "t_") for name in
           ("pattern", "monthday", "ordinal", "weekday", "start_time", "duration_minutes", "place", "mode",
            "month_of_quarter", "topic", "committee_days_before")}


@pytest.fixture
def admin(app, world, database, settings):
    with database.session() as s:
        objects = schedule_objects(s, world, "A", "a3", settings.data_dir)
        objects.update(hold_meeting(s, objects["meeting_id"]))
        objects.update(review_objects(s, world, "a2", settings.data_dir))
    client = TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False)
    with client:
        login(client, "admin", PASSWORD)
        yield client, objects


def numeric_routes(app):
    for route in app.routes:
        if isinstance(route, Route) and ":int}" in route.path:
            yield route


def test_ids_beyond_bigint_in_any_path_are_not_found(app, admin, database):
    client, _ = admin
    token = client_token(client)
    with database.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    probed = 0
    for route in numeric_routes(app):
        for huge in HUGE:
            url = PARAM.sub(lambda m, h=huge: str(h) if m.group(0).endswith(":int}") else "x", route.path)
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                r = client.request(method, url, data={"csrf_token": token} if method == "POST" else None,
                                   follow_redirects=False)
                assert r.status_code == 404, f"{method} {url} → {r.status_code}"
                assert "Không tìm thấy" in r.text
                probed += 1
    assert probed > 150
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_numbers_no_column_can_hold_in_any_form_are_refused(app, admin, world):
    """Every form field at once, with a number past BIGINT (and a Unicode digit, which
    ``str.isdigit`` accepts and ``int`` refuses): never a 500."""
    client, objects = admin
    token = client_token(client)
    params = {"cell_id": world.id("A"), "member_id": world.id("a2"), "org_id": world.id("X"), "period_id": 1,
              **objects}
    for value in (str(2**64), "9" * 30, "²", "-1"):
        form = {name: value for name in FIELDS} | {"csrf_token": token}
        for route in app.routes:
            if not isinstance(route, Route) or "POST" not in (route.methods or ()) or route.path in ("/login", "/logout"):
                continue
            url = PARAM.sub(lambda m: str(params.get(m.group(1), 1)), route.path)
            r = client.post(url, data=form, follow_redirects=False)
            assert r.status_code < 500, f"POST {url} with {value!r} → {r.status_code}"


def test_a_deeply_nested_json_body_is_a_400(admin):
    client, objects = admin
    token = client_token(client)
    url = f"/meetings/{objects['meeting_id']}/minutes/draft"
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
                 json.dumps({"revision": 0, "data": {"items": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}})):
        r = client.post(url, content=body, headers={"content-type": "application/json", "x-csrf-token": token})
        assert r.status_code == 400, r.status_code
        assert "không hợp lệ" in r.text
