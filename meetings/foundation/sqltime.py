"""Local dates and durations computed in SQL, the same way on SQLite and PostgreSQL.

Roll-ups over a whole province read tens of thousands of meetings and hundreds of thousands
of roster lines. Turning every timestamp into a Python ``datetime`` and then into a local
date costs more than the query itself, so the queries behind those roll-ups ask the database
for the local day and the whole minutes between two instants instead.

SQLite has no time-zone database: the local day there is UTC + 7 hours. That is exact for
Asia/Ho_Chi_Minh, which has kept UTC+7 without daylight saving since 1975 (``LOCAL_TZ``);
a test compares both backends with the Python computation.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Date, Integer, Select, String, bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeDecorator

from .base import LOCAL_TZ

#: The UTC offset SQLite adds to get the local day (see the module docstring).
SQLITE_OFFSET = "+7 hours"
assert str(LOCAL_TZ) == "Asia/Ho_Chi_Minh", "sqltime assumes Vietnam's fixed UTC+7"


class local_date(FunctionElement[Any]):  # noqa: N801 - reads like the SQL function it is
    """The local (Vietnam) calendar day of a UTC timestamp column."""

    type = Date()
    inherit_cache = True
    name = "local_date"


@compiles(local_date, "postgresql")
def _local_date_pg(element: local_date, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'Asia/Ho_Chi_Minh') AS DATE)"


@compiles(local_date, "sqlite")
def _local_date_sqlite(element: local_date, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '{SQLITE_OFFSET}')"


class minutes_between(FunctionElement[Any]):  # noqa: N801
    """Whole minutes from the first timestamp to the second (``int(seconds // 60)`` in Python,
    for a non-negative span), or NULL when either is NULL."""

    type = Integer()
    inherit_cache = True
    name = "minutes_between"


def _two(element: minutes_between, compiler: Any, **kw: Any) -> tuple[str, str]:
    start, end = list(element.clauses)
    return compiler.process(start, **kw), compiler.process(end, **kw)


@compiles(minutes_between, "postgresql")
def _minutes_pg(element: minutes_between, compiler: Any, **kw: Any) -> str:
    start, end = _two(element, compiler, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end} - {start})) / 60) AS INTEGER)"


@compiles(minutes_between, "sqlite")
def _minutes_sqlite(element: minutes_between, compiler: Any, **kw: Any) -> str:
    start, end = _two(element, compiler, **kw)
    # julianday() is a double: round the span to milliseconds before dividing, so that an
    # exact 75-minute meeting never comes out as 74.
    return f"CAST(ROUND((julianday({end}) - julianday({start})) * 86400.0, 3) / 60 AS INTEGER)"


class unindexed(FunctionElement[Any]):  # noqa: N801
    """A column the planner should not look up through an index in this comparison.

    For queries that start from a few members' own rows: SQLite would otherwise walk a whole
    year of meetings by their ``starts_at`` index and probe each. SQLite: ``+column`` (a no-op
    that hides the index); PostgreSQL plans this well by itself: the plain column.
    """

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


#: A SELECT of any columns (``Select`` is generic in the types of its columns).
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


def plain_rows(session: Any, stmt: Any) -> list[tuple[Any, ...]]:
    """Run ``stmt`` on the session's connection and return the driver's own tuples.

    For the roll-ups only: tens of thousands of rows of integers, strings and dates, where
    SQLAlchemy's per-value result processing costs more than the query. The caller converts
    what it needs — enums from their string values, dates from text on SQLite (PostgreSQL
    returns ``date``), 0/1 to booleans on SQLite.
    """
    result = session.connection().execute(stmt.execution_options(yield_per=None))
    cursor = result.cursor
    rows = cursor.fetchall() if cursor is not None else []
    result.close()
    return rows



class IdList(TypeDecorator[list[int]]):
    """A list of integer ids as one text value: an array literal (``{1,2,3}``, cast to
    ``integer[]`` by the SQL) on PostgreSQL, JSON (read by ``json_each``) on SQLite — written
    with one ``join``, not adapted id by id."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, str):  # written already (id_pair_values)
            return value
        ids = ",".join(map(str, map(int, value or ())))
        return f"{{{ids}}}" if dialect.name == "postgresql" else f"[{ids}]"

    def process_literal_param(self, value: Any, dialect: Any) -> Any:
        return self.process_bind_param(value, dialect)


class among(FunctionElement[Any]):  # noqa: N801
    """``column IN (ids)`` with the ids as one value (:class:`IdList`), not one parameter each: a
    province's audit filters by 3,000 cells in several statements, and rendering 3,000
    parameters per statement cost more than running it. ``= ANY(ARRAY[…])`` on PostgreSQL,
    ``IN (SELECT value FROM json_each('[…]'))`` on SQLite; both use the column's index.

    The value is written into the statement when it runs (``literal_execute``; the compiled
    statement stays cached): PostgreSQL hashes a constant array for ``= ANY`` but searches a
    bound one (a parameter) element by element for every row."""

    # Untyped, so that SQLite does not get "… = 1" appended as for a boolean column.
    type = NullType()
    inherit_cache = True
    name = "among"

    def __init__(self, column: Any, ids: Any) -> None:
        super().__init__(column, bindparam(None, list(ids), type_=IdList(), literal_execute=True))


@compiles(among, "postgresql")
def _among_pg(element: among, compiler: Any, **kw: Any) -> str:
    column, ids = list(element.clauses)
    return f"{compiler.process(column, **kw)} = ANY(CAST({compiler.process(ids, **kw)} AS INTEGER[]))"


@compiles(among, "sqlite")
def _among_sqlite(element: among, compiler: Any, **kw: Any) -> str:
    column, ids = list(element.clauses)
    return f"{compiler.process(column, **kw)} IN (SELECT value FROM json_each({compiler.process(ids, **kw)}))"


def id_pairs(pairs: dict[int, int] | None, dialect: str, *, name: str | None = None) -> tuple[Any, Any, Any]:
    """A table of (key, value) integer pairs bound as one or two values — ``json_each`` of a
    JSON object on SQLite, ``unnest`` of two arrays on PostgreSQL — to join on: returns the
    FROM element and its key and value columns. (The audit groups a province's cells by the
    committee each stood under, a mapping computed from the dated links.) With ``name`` and
    no pairs, the values are parameters named after it, given by :func:`id_pair_values` (a
    statement built once, run with other pairs), and sent as parameters, not written into
    the statement: its text stays the same from one run to the next, so that neither
    SQLAlchemy nor the driver rescans 3,000 ids of text each time and the database may keep
    it prepared (``unnest`` and ``json_each`` read the pairs once, unlike ``= ANY``:
    :class:`among`)."""
    inline = name is None
    if dialect == "postgresql":
        keys, values = (None, None) if pairs is None else (list(pairs), list(pairs.values()))
        table = func.unnest(cast(bindparam(name and f"{name}_keys", keys, type_=IdList(), literal_execute=inline),
                                 ARRAY(Integer())),
                            cast(bindparam(name and f"{name}_values", values, type_=IdList(), literal_execute=inline),
                                 ARRAY(Integer()))).table_valued("k", "v").render_derived()
        return table, table.c.k, table.c.v
    mapping = None if pairs is None else _pairs_json(pairs)
    table = func.json_each(bindparam(name and f"{name}_pairs", mapping, type_=String(), literal_execute=inline)
                           ).table_valued("key", "value")
    return table, cast(table.c.key, Integer), cast(table.c.value, Integer)


def id_pair_values(name: str, pairs: dict[int, int], dialect: str) -> dict[str, Any]:
    """The parameters of :func:`id_pairs` ``name=name``: these pairs, written as the values
    the driver is sent (one text each; statements sharing them write them once)."""
    if dialect == "postgresql":
        return {f"{name}_keys": f"{{{','.join(map(str, pairs))}}}",
                f"{name}_values": f"{{{','.join(map(str, pairs.values()))}}}"}
    return {f"{name}_pairs": _pairs_json(pairs)}


def _pairs_json(pairs: dict[int, int]) -> str:
    """A JSON object of integer pairs ({"12": 3, …}), written directly (ids only, nothing to
    escape)."""
    return "{" + ",".join([f'"{int(k)}":{int(v)}' for k, v in pairs.items()]) + "}"
