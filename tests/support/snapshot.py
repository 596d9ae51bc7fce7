"""Everything a request could have stored, to assert that a refused one stored nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import Database
from meetings.foundation.base import Base

#: Tables that change on any authenticated request (the login session's last use) or on
#: any login; they are not what a refused form could damage.
VOLATILE = frozenset({"login_sessions", "login_failures", "join_token_uses"})


def stored(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the volatile ones, in a stable order."""
    with database.session() as s:
        return {
            table.name: sorted((tuple(row) for row in s.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name not in VOLATILE
        }
