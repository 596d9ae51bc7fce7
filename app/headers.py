"""Security headers on every HTTP response (finding 12.7).

* A strict Content-Security-Policy on HTML pages: scripts and styles only from our own
  ``/static`` files — no inline script, no inline style attribute, no ``eval`` — so that a
  member's text that slipped through escaping still cannot run. ``connect-src 'self'`` covers
  the room's same-origin WebSocket; media may come from the camera (``mediastream:``) and
  ``blob:``. ``frame-ancestors 'none'`` (and ``X-Frame-Options``) stop click-jacking.
* ``Referrer-Policy: same-origin``: a page's address (member and meeting ids, a calendar-feed
  token) never leaves the site in a Referer.
* ``Strict-Transport-Security`` when the site is served over HTTPS (``COOKIE_SECURE`` or an
  ``https://`` ``PUBLIC_URL``).
* ``Cache-Control: no-store`` on everything but ``/static``: pages carry member data and must
  not stay in a shared or back-button cache after logout. A response that set its own
  Cache-Control (the calendar feed) keeps it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()"
HSTS = "max-age=31536000"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                headers["Permissions-Policy"] = PERMISSIONS_POLICY
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if self.https:
                    headers["Strict-Transport-Security"] = HSTS
                if not static and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
