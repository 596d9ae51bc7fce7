"""Finding 12.7: security headers, and pages that need no inline script or style.

There was no CSP, no frame-ancestors, no Referrer-Policy, no HSTS over HTTPS, and pages with
member data were cacheable. Now every page carries a strict policy, and — since such a
policy only helps when the pages obey it — no page the site renders has an inline script,
an event-handler attribute or a style attribute.
"""

import re

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.factory import create_app
from meetings.planning.meetings import Meeting, MeetingStatus
from tests.support.routes import concrete
from tests.support.world import hold_meeting, review_objects, schedule_objects

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


def policy(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    header = response.headers.get("content-security-policy", "")
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def assert_strict(response) -> None:  # type: ignore[no-untyped-def]
    csp = policy(response)
    assert csp.get("script-src") == "script-src 'self'", csp
    assert csp.get("style-src") == "style-src 'self'", csp
    assert csp.get("frame-ancestors") == "frame-ancestors 'none'"
    assert csp.get("object-src") == "object-src 'none'" and csp.get("base-uri") == "base-uri 'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_carry_a_strict_policy_and_are_not_cached(client, world, client_as):
    login_page = client.get("/login")
    assert_strict(login_page)
    assert "strict-transport-security" not in login_page.headers  # plain HTTP here
    secretary = client_as("sec_a")
    for url in ("/", f"/cells/{world.id('A')}", f"/members/{world.id('a2')}", f"/cells/{world.id('A')}/schedule"):
        page = secretary.get(url)
        assert page.status_code == 200
        assert_strict(page)
        assert page.headers["cache-control"] == "no-store", url
    assert secretary.get(f"/cells/{world.id('A')}/import/template.csv").headers["cache-control"] == "no-store"
    # Static files may be cached; they hold no member data.
    assert "no-store" not in secretary.get("/static/app.css").headers.get("cache-control", "")


@pytest.mark.parametrize("overrides", [{"COOKIE_SECURE": True}, {"PUBLIC_URL": "https://chibo.example.vn"}])
def test_hsts_when_served_over_https(tmp_path, database, world, overrides):
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path / "var"), SECRET_KEY="k" * 32, LOG_REQUESTS=False,
                                 NOTICE_INTERVAL=0, **overrides)
    with TestClient(create_app(settings, database=database), base_url="https://127.0.0.1") as c:
        r = c.get("/login")
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert_strict(r)


def test_no_page_has_inline_script_handlers_or_style(app, world, database, settings, client_as):
    with database.session() as s:
        objects = schedule_objects(s, world, "A", "a3", settings.data_dir)
        objects.update(hold_meeting(s, objects["meeting_id"]))
        objects.update(review_objects(s, world, "a2", settings.data_dir))
        # An open meeting, so that the room and the minutes editor render their scripts.
        s.get(Meeting, objects["meeting_id"]).status = MeetingStatus.OPEN
    params = {"cell_id": world.id("A"), "member_id": world.id("a2"), "org_id": world.id("X"), "period_id": 1,
              "token": "x", "account_id": world.accounts["mem_a"], **objects}
    pages = 0
    for username in ("sec_a", "admin"):
        client = client_as(username)
        urls = [url for _, url in concrete(app, params, methods=["GET"])] + ["/", "/password", "/sessions"]
        for url in urls:
            r = client.get(url, follow_redirects=True)
            if not r.headers.get("content-type", "").startswith("text/html"):
                continue
            pages += 1
            html = r.text
            assert not INLINE_SCRIPT.search(html), (url, INLINE_SCRIPT.search(html).group(0))
            assert not EVENT_HANDLER.search(html), (url, EVENT_HANDLER.search(html).group(0))
            assert not STYLE_ATTRIBUTE.search(html), (url, STYLE_ATTRIBUTE.search(html).group(0))
    assert pages > 40
    anonymous = TestClient(app, base_url="http://127.0.0.1:8000")
    with anonymous:
        html = anonymous.get("/login").text
        assert not (INLINE_SCRIPT.search(html) or EVENT_HANDLER.search(html) or STYLE_ATTRIBUTE.search(html))
