"""Helpers for driving the site through HTTP like a browser does."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(client: TestClient) -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    page = client.get("/login", follow_redirects=False)
    if page.status_code != 200:
        page = client.get("/password")
    match = CSRF_RE.search(page.text)
    assert match, "page carries no CSRF token"
    return match.group(1)


def login(client: TestClient, username: str, password: str) -> None:
    token = csrf_of(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def post(client: TestClient, url: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
    """POST a form with the session's CSRF token, as the site's own forms do."""
    token = client_token(client)
    return client.post(url, data={**(data or {}), "csrf_token": token}, follow_redirects=False, **kwargs)


def client_token(client: TestClient) -> str:
    page = client.get("/", follow_redirects=True)
    match = CSRF_RE.search(page.text)
    assert match, "page carries no CSRF token"
    return match.group(1)
