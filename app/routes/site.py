"""What browsers ask of every site: the favicon and the web app manifest (members open the
platform from a home-screen icon on their phones)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

ICONS = Path(__file__).resolve().parent.parent.parent / "static" / "icons"

MANIFEST = {
    "name": "Chi bộ trực tuyến",
    "short_name": "Chi bộ",
    "description": "Sinh hoạt chi bộ trực tuyến: lịch họp, phòng họp, điểm danh, biên bản.",
    "lang": "vi",
    "dir": "ltr",
    "start_url": "/",
    "scope": "/",
    "display": "standalone",
    "background_color": "#f6f6f4",
    "theme_color": "#b3261e",
    "icons": [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        {"src": "/static/icons/icon.svg", "sizes": "any", "type": "image/svg+xml"},
    ],
}

#: A day: icons and the manifest change rarely, and every page asks for them.
CACHE = {"Cache-Control": "public, max-age=86400"}


async def favicon(request: Request) -> Response:
    return FileResponse(ICONS / "favicon.ico", media_type="image/x-icon", headers=CACHE)


async def manifest(request: Request) -> Response:
    return JSONResponse(MANIFEST, media_type="application/manifest+json", headers=CACHE)


routes = [
    Route("/favicon.ico", favicon, name="favicon"),
    Route("/manifest.webmanifest", manifest, name="manifest"),
]
