"""What a member on a slow link downloads before the meeting: compressed text, static files
cached for good under versioned URLs, the room's modules fetched in parallel, and a join
token that comes with the page (app/assets.py, issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.factory import STATIC_DIR, create_app
from app.routes.room import ROOM_MODULES
from realtime.tokens import read_join_token
from tests.support.web import login
from tests.support.world import PASSWORD


@pytest.fixture
def room_client(room_settings, sqlite_database, room_world):  # type: ignore[no-untyped-def]
    app = create_app(room_settings, database=sqlite_database)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        login(client, "away_a", PASSWORD)
        yield client


def static_links(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_text_is_gzipped_and_versioned_static_files_are_cached_for_good(room_client, room_world):
    page = room_client.get(f"/meetings/{room_world.meeting_id}/room", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["cache-control"] == "no-store"  # it carries a join token
    links = static_links(page.text)
    assert links and all(re.fullmatch(r"/static/v/[0-9a-f]{12}/.+", url) for url in links), links
    script = next(url for url in links if url.endswith("/room/room.js"))
    response = room_client.get(script, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    raw = (STATIC_DIR / "room" / "room.js").read_bytes()
    assert response.content == raw  # httpx decodes: the same bytes
    assert int(response.headers["content-length"]) < len(raw) / 2
    # A module imported by relative path resolves under the same versioned folder.
    module = room_client.get(script.replace("room.js", "signalling.js"))
    assert module.headers["cache-control"].endswith("immutable")
    # Plain or stale URLs still work, revalidated by ETag (304, no body).
    for url in ("/static/room/room.js", "/static/v/000000000000/room/room.js"):
        first = room_client.get(url)
        assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
        again = room_client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_the_room_page_preloads_every_module_and_carries_a_join_token(room_client, room_world, room_settings):
    html = room_client.get(f"/meetings/{room_world.meeting_id}/room").text
    preloaded = {url.rsplit("/", 1)[1] for url in re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)}
    on_disk = {p.name for p in (STATIC_DIR / "room").glob("*.js")}
    assert preloaded == set(ROOM_MODULES) == on_disk
    token = re.search(r'data-token="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    grant = read_join_token(room_settings.secret_key, token)
    assert grant.meeting_id == room_world.meeting_id and grant.member_id == room_world.world.id("a4")


def test_a_member_who_may_not_join_gets_no_token(room_client, room_world):
    # mem_a is not away and not invited: the page explains, and carries no token.
    room_client.post("/logout", data={"csrf_token": re.search(
        r'name="csrf-token" content="([^"]+)"', room_client.get("/").text).group(1)})  # type: ignore[union-attr]
    login(room_client, "mem_a", PASSWORD)
    html = room_client.get(f"/meetings/{room_world.meeting_id}/room").text
    assert "Không thể vào phòng họp" in html
    assert "data-token" not in html and "modulepreload" not in html


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "application/pdf",
                                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"])
def test_compressed_formats_are_not_gzipped_again(mime):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.responses import Response
    from starlette.routing import Route

    from app.assets import gzip_middleware_options

    body = bytes(range(256)) * 40
    app = Starlette(routes=[Route("/f", lambda request: Response(body, media_type=mime)),
                            Route("/t", lambda request: Response("chi bộ " * 500, media_type="text/csv"))],
                    middleware=[Middleware(GZipMiddleware, **gzip_middleware_options())])
    with TestClient(app) as client:
        as_is = client.get("/f", headers={"Accept-Encoding": "gzip"})
        text = client.get("/t", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in as_is.headers and as_is.content == body
    assert text.headers["content-encoding"] == "gzip"


def test_static_version_changes_with_content(tmp_path: Path):
    from app.assets import tree_digest

    (tmp_path / "a.js").write_text("1")
    before = tree_digest(tmp_path)
    (tmp_path / "a.js").write_text("2")
    assert tree_digest(tmp_path) != before


def test_the_login_page_on_the_way_to_a_room_prefetches_the_room(room_settings, sqlite_database, room_world):
    app = create_app(room_settings, database=sqlite_database)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        to_room = client.get(f"/login?next=/meetings/{room_world.meeting_id}/room").text
        plain = client.get("/login").text
        login(client, "away_a", PASSWORD)
        room = client.get(f"/meetings/{room_world.meeting_id}/room").text
    prefetched = set(re.findall(r'<link rel="prefetch" href="([^"]+)"', to_room))
    # Exactly what the room page will ask for (same versioned URLs): modules and stylesheet.
    needed = set(re.findall(r'<link rel="modulepreload" href="([^"]+)"', room))
    needed |= {url for url in static_links(room) if url.endswith("room/room.css")}
    assert prefetched == needed and len(needed) == len(ROOM_MODULES) + 1
    assert "prefetch" not in plain
