"""The append-only audit log.

Every change made by a secretary, auditor or admin records who, when, what, and the values
before and after, in the same transaction as the change itself: ``record`` only adds a row to
the caller's session, so the entry commits or rolls back together with the change. The
database refuses UPDATE and DELETE on the table (triggers created by the migration).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .actors import Actor
from .base import Base, JSONType, UTCDateTime, json_safe, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    #: The organisation the change concerns, for scoping the log to an auditor's subtree.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    return json_safe({name: getattr(obj, name) for name in fields})


def _organisation_of(entity: Any) -> int | None:
    for attr in ("organisation_id", "cell_id", "home_cell_id"):
        value = getattr(entity, attr, None)
        if isinstance(value, int):
            return value
    if type(entity).__name__ == "Organisation":
        return int(entity.id)
    return None


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    organisation_id: int | None = None,
    note: str | None = None,
    entity_type: str | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction. ``entity`` is the changed object (or its id
    when the object is not at hand, with ``entity_type`` naming its kind)."""
    entity_id = entity if isinstance(entity, int) else getattr(entity, "id", None)
    entry = AuditEntry(
        actor_account_id=actor.account_id,
        actor_label=actor.label,
        actor_address=actor.address,
        action=action,
        entity_type=entity_type or type(entity).__name__,
        entity_id=str(entity_id) if entity_id is not None else None,
        organisation_id=organisation_id if organisation_id is not None else _organisation_of(entity),
        before=before,
        after=after,
        note=note,
    )
    session.add(entry)
    return entry


def entries_for(session: Session, organisation_ids: Iterable[int], limit: int = 200) -> list[AuditEntry]:
    ids = list(organisation_ids)
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.organisation_id.in_(ids))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )
