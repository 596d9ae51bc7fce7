"""Enumerate the site's routes, so that access tests cover every page and form there is."""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.routing import Route

PARAM = re.compile(r"{(\w+)(?::\w+)?}")
#: Routes anyone may use without an account, or that only touch the caller's own session.
#: The calendar feed is public by design: its secret token is the access check
#: (tests/test_calendars.py covers it). tests/security/test_authorization.py covers them all.
PUBLIC = {"/login", "/logout", "/healthz", "/password", "/", "/calendar/{token}.ics", "/favicon.ico",
          "/manifest.webmanifest", "/sessions", "/sessions/{session_id:int}/end", "/sessions/end-others"}


def concrete(app, params: dict[str, int | str], *, methods: Iterable[str] = ("GET", "POST")) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, url) for every route, with path parameters taken from ``params``."""
    wanted = set(methods)
    result = []
    for route in app.routes:
        if not isinstance(route, Route) or route.path in PUBLIC:
            continue
        names = PARAM.findall(route.path)
        missing = [n for n in names if n not in params]
        assert not missing, f"no test value for {missing} in {route.path}: extend the access tests"
        url = PARAM.sub(lambda m: str(params[m.group(1)]), route.path)
        for method in sorted((route.methods or set()) & wanted):
            result.append((method, url))
    return result
