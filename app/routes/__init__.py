"""HTTP routes, one module per area of the site."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import auth, health, home, meeting, roster, schedule


def all_routes() -> list[BaseRoute]:
    return [*health.routes, *auth.routes, *home.routes, *roster.routes, *schedule.routes, *meeting.routes]
