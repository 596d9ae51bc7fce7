"""Static files for slow links: versioned URLs cached for good, gzip for text, nothing else.

A member on a 3G link pays a round trip (300 ms and more) for every file the browser has
to revalidate and every kilobyte it has to fetch (issue 15: login → room page took 4.4–8.8 s
on such a link). So:

* Pages link static files as ``/static/v/<version>/<path>`` (``static_url``), where
  ``version`` is a digest of everything under ``static/``. Those responses say
  ``Cache-Control: public, max-age=31536000, immutable``: after the first visit the browser
  takes them from its cache without asking. A deploy changes the digest, hence every URL.
  ES modules import each other by relative path (``./signalling.js``), which resolves under
  the same versioned folder, so the whole module graph is versioned by one prefix.
* A URL with another version (a page rendered before a deploy) still gets the current file,
  marked ``no-cache``; plain ``/static/<path>`` too. ``no-cache`` lets the browser keep the
  file and revalidate it with its ETag (a 304, no body).
* ``gzip_middleware_options``: text (HTML, CSS, JavaScript, JSON, SVG, CSV, ICS) is
  compressed; what is compressed already (images, PDF, DOCX/XLSX, which are ZIP files) is
  not, and neither is a WebSocket (GZipMiddleware only handles HTTP).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

#: Already compressed: gzip would cost CPU on both ends for nothing.
ALREADY_COMPRESSED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "application/pdf",
    "application/octet-stream",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


def gzip_middleware_options() -> dict[str, Any]:
    return {"minimum_size": 500, "compresslevel": 6, "exclude_content_types": ALREADY_COMPRESSED}


def tree_digest(directory: Path) -> str:
    """A short digest of every file's path and content under ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class VersionedStaticFiles(StaticFiles):
    """``StaticFiles`` that also serves ``v/<version>/<path>``, cached for good when the
    version is the current one."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=str(directory))
        self.version = tree_digest(directory)

    def url(self, path: str) -> str:
        return f"/static/v/{self.version}/{path.lstrip('/')}"

    async def get_response(self, path: str, scope: Scope) -> Response:
        version = None
        parts = path.replace("\\", "/").split("/", 2)
        if len(parts) == 3 and parts[0] == "v":
            version, path = parts[1], parts[2]
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = IMMUTABLE if version == self.version else REVALIDATE
        return response
