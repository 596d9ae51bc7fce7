"""Declarative base, column types and time helpers shared by every domain module."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast, overload
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, CursorResult, DateTime, Enum, Executable, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session

#: Every date and time the users see is in Vietnam's time zone (UTC+7, no DST).
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
#: Ids are SQL BIGINTs. A larger number from outside (a path, a form, a frame) names nothing of
#: ours, and SQLite raises OverflowError on it instead of finding nothing.
MAX_ID = 2**63 - 1

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def value_enum(cls: type[enum.Enum], length: int = 20) -> Enum:
    """A Python enum stored as its values in a plain string column (no native database enum,
    so that adding a member needs no ALTER TYPE and SQLite and PostgreSQL store the same text)."""
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored as UTC.

    SQLite has no time zones, so values are stored as naive UTC and come back aware;
    PostgreSQL stores ``timestamptz``. Naive input is refused: it is always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")


@contextmanager
def unit_of_work(sessions: Callable[[], Session]) -> Iterator[Session]:
    """A new session whose work commits when the block ends and rolls back when it raises
    anything (a cancellation too); the session is closed either way. A block that decides to
    keep nothing calls ``session.rollback()`` itself, and the commit then has nothing to write."""
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed (the test of a compare-and-set).
    ``Session.execute`` is typed as returning a plain ``Result``; a DML statement's result is a
    ``CursorResult``, which has the count."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_now() -> dt.datetime:
    return dt.datetime.now(LOCAL_TZ)


def local_today() -> dt.date:
    return local_now().date()


def to_local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(LOCAL_TZ)


@overload
def json_safe(value: Mapping[str, object]) -> dict[str, Any]: ...
@overload
def json_safe(value: None) -> None: ...


def json_safe(value: Mapping[str, object] | None) -> dict[str, Any] | None:
    """Make a value JSON-serialisable for the audit log (dates as ISO strings, enums by value)."""
    plain: dict[str, Any] | None = json.loads(json.dumps(value, default=_json_default))
    return plain


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")

