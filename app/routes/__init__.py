"""HTTP routes, one module per area of the site."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import (
    attendance,
    audit,
    auth,
    health,
    home,
    meeting,
    minutes,
    records,
    reviews,
    room,
    roster,
    schedule,
    sessions,
    site,
    votes,
)


def all_routes() -> list[BaseRoute]:
    return [*health.routes, *site.routes, *auth.routes, *sessions.routes, *home.routes, *roster.routes,
            *schedule.routes, *meeting.routes,
            *room.routes, *attendance.routes, *votes.routes, *minutes.routes, *records.routes, *reviews.routes,
            *audit.routes]
