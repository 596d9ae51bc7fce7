"""Consequences that flow upward, dispatched inside the caller's transaction.

The domain's parts depend one way (evaluation → proceedings → planning → organisation →
foundation). Some facts of a lower part have consequences in a higher one: an attendance
decision or a change of a member's periods can raise or lower a three-month flag and queue
notices. The lower part does not import the higher one; it publishes a small, frozen event,
and the higher part subscribes a handler to that event type when it is imported.

Handlers run synchronously, in order of subscription, with the publisher's session: their
writes commit or roll back with the fact that caused them. ``meetings/__init__.py`` imports
every part, so every handler is subscribed before any event can be published.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

E = TypeVar("E")
Handler = Callable[[Session, Any], None]

_handlers: dict[type, list[Handler]] = {}


def subscribe(event_type: type[E]) -> Callable[[Callable[[Session, E], None]], Callable[[Session, E], None]]:
    """Decorator: call the function with (session, event) for every published ``event_type``."""

    def register(handler: Callable[[Session, E], None]) -> Callable[[Session, E], None]:
        _handlers.setdefault(event_type, []).append(handler)
        return handler

    return register


def publish(session: Session, event: object) -> None:
    """Run every handler subscribed to the event's type, in this transaction."""
    for handler in _handlers.get(type(event), ()):
        handler(session, event)


def subscribers(event_type: type) -> list[Handler]:
    """The handlers of an event type (for the tests that check the wiring)."""
    return list(_handlers.get(event_type, ()))
