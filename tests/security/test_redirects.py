"""Finding 12.9: no form sends the browser to another site.

The calendar-feed form's ``next`` field was redirected to as given. Every ``next`` (the login
form's and the feed form's) now goes through one helper that keeps same-site paths only.
"""

import pytest

from tests.support.web import csrf_of, post
from tests.support.world import PASSWORD

OFF_SITE = [
    "https://evil.example/",
    "//evil.example/phish",
    "/\\evil.example/phish",
    "/\t/evil.example",
    "\\\\evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    " https://evil.example",
]


@pytest.mark.parametrize("action", ["issue", "revoke"])
def test_the_calendar_feed_form_stays_on_the_site(world, client_as, action):
    member = client_as("mem_a")
    url = f"/members/{world.id('a2')}/calendar-feed"
    for target in OFF_SITE:
        r = post(member, url, {"next": target, "action": action})
        assert r.status_code == 303
        assert r.headers["location"] == "/", target
    r = post(member, url, {"next": f"/cells/{world.id('A')}/schedule", "action": action})
    assert r.headers["location"] == f"/cells/{world.id('A')}/schedule"


def test_the_login_form_stays_on_the_site(client, world):
    for target in OFF_SITE:
        token = csrf_of(client)
        r = client.post("/login", params={"next": target},
                        data={"username": "mem_a", "password": PASSWORD, "csrf_token": token},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", target
        post(client, "/logout")
