"""Everything a request could have stored, to assert that a refused one stored nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from meetings.foundation.base import Base

#: Tables that change on any authenticated request (the login session's last use) or on
#: any login; they are not what a refused form could damage.
VOLATILE = frozenset({"login_sessions", "login_failures", "join_token_uses"})

Rows = dict[str, list[tuple[Any, ...]]]


def stored(source: Database | Session) -> Rows:
    """Every row of every table but the volatile ones, in a stable order. Read through a
    session, this includes what it holds unflushed (the query flushes first)."""
    with source.session() if isinstance(source, Database) else nullcontext(source) as s:
        return {
            table.name: sorted((tuple(row) for row in s.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name not in VOLATILE
        }


@contextmanager
def unchanged(source: Database | Session) -> Iterator[None]:
    """Assert that the block, refused, left every table as it was:
    ``with unchanged(session), pytest.raises(ValidationError): …``."""
    before = stored(source)
    yield
    after = stored(source)
    changed = {name for name in before if before[name] != after[name]}
    assert not changed, {name: (before[name], after[name]) for name in changed}
