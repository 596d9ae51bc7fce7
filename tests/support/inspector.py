"""An inspector with the database files, the logs and the Redis traffic, trying to learn how
named members voted in a secret ballot.

Every source is cut into *observations*: units the inspector can tell apart and order — a
transaction id on PostgreSQL (``xmin`` of every row version, dead ones too, read from the
heap pages with the ``pageinspect`` extension), a commit in SQLite's write-ahead log (the
database rebuilt commit by commit from the raw ``-wal`` file), a log line, an audit entry, a
Redis message. In each it looks for voters that appear (a who-voted row, a voter named in a
line) and choices that grow (a counter, a choice written down). ``link`` pairs them: a voter
gets the choice that grew in the same unit. Where a unit holds no such pair the inspector
can only guess from the published result (everybody voted the majority choice), which is
what anyone in the meeting can do: that is chance, and no attack may beat it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

CHOICES = ("agree", "disagree", "abstain")


@dataclass
class Observation:
    """One unit of change: the voters that appeared in it and how each choice's count moved."""

    voters: set[int] = field(default_factory=set)
    delta: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHOICES, 0))


def majority(result: dict[str, int]) -> str:
    return max(CHOICES, key=lambda c: result[c])  # ties: the first in CHOICES


def link(observations: Iterable[Observation]) -> dict[int, str]:
    """The inspector's guesses: each voter gets the choice that grew most in the unit where
    the voter appeared (ties: the first in CHOICES)."""
    guesses: dict[int, str] = {}
    for seen in observations:
        grew = [c for c in CHOICES if seen.delta[c] > 0]
        if not grew:
            continue
        best = max(grew, key=lambda c: seen.delta[c])
        for voter in seen.voters:
            guesses[voter] = best
    return guesses


def accuracy(guesses: dict[int, str], truth: dict[int, str], result: dict[str, int]) -> float:
    """Share of voters guessed right; a voter the attack could not place gets the majority."""
    fallback = majority(result)
    return sum(guesses.get(voter, fallback) == choice for voter, choice in truth.items()) / len(truth)


def chance(truth: dict[int, str], result: dict[str, int]) -> float:
    """What the published result alone gives: everybody guessed to have voted the majority."""
    return accuracy({}, truth, result)


# --------------------------------------------------------------------------- PostgreSQL


def _varlena(raw: bytes) -> bytes:
    if raw[0] & 0x01:  # 1-byte header (short varlena)
        return raw[1:(raw[0] >> 1) & 0x7F]
    length = (int.from_bytes(raw[:4], "little") >> 2) & 0x3FFFFFFF
    return raw[4:length]


def _decode(raw: bytes | None, kind: str) -> Any:
    if raw is None:
        return None
    if kind in ("integer", "bigint", "smallint"):
        return int.from_bytes(raw, "little", signed=True)
    if kind == "boolean":
        return raw != b"\x00"
    if kind.startswith(("character varying", "text")):
        return _varlena(raw).decode()
    return raw


def ensure_pageinspect(conn: Connection) -> None:
    """``CREATE EXTENSION pageinspect`` (needs a superuser, as an inspector with the server
    would be); into ``public``, so that no test schema owns it."""
    installed = conn.execute(text("SELECT extnamespace::regnamespace::text FROM pg_extension "
                                  "WHERE extname = 'pageinspect'")).scalar()
    if installed is None:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public"))
        conn.commit()


def row_versions(conn: Connection, table: str) -> list[dict[str, Any]]:
    """Every version of every row of ``table`` still in its heap pages — live and dead — with
    its ``xmin`` (the transaction that wrote it) and ``ctid``, as ``pageinspect`` reads them."""
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    conn.execute(text(f'SET search_path TO "{schema}", public'))
    columns = conn.execute(text(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped ORDER BY attnum"), {"t": table}).all()
    blocks = conn.execute(text("SELECT pg_relation_size(CAST(:t AS regclass)) / current_setting('block_size')::int"),
                          {"t": table}).scalar()
    versions = []
    for block in range(int(blocks or 0)):
        items = conn.execute(text(
            "SELECT t_xmin, t_xmax, t_ctid, t_attrs FROM heap_page_item_attrs(get_raw_page(:t, :b), "
            "CAST(:t AS regclass)) WHERE t_attrs IS NOT NULL"), {"t": table, "b": block}).all()
        for xmin, xmax, ctid, attrs in items:
            values = list(attrs) + [None] * (len(columns) - len(attrs))  # trailing NULLs are left out
            row = {name: _decode(bytes(raw) if raw is not None else None, kind)
                   for (name, kind), raw in zip(columns, values, strict=True)}
            versions.append({"xmin": int(xmin), "xmax": int(xmax), "ctid": str(ctid), "block": block, **row})
    return versions


def postgres_observations(conn: Connection, motion_id: int) -> list[Observation]:
    """One observation per transaction id that wrote a who-voted row or a count."""
    units: dict[int, Observation] = {}
    for row in row_versions(conn, "ballots_cast"):
        if row["motion_id"] == motion_id:
            units.setdefault(row["xmin"], Observation()).voters.add(row["member_id"])
    # Counters: each row's versions in transaction order; what changed in each transaction.
    counters: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for row in row_versions(conn, "secret_tallies"):
        if row["motion_id"] == motion_id:
            counters.setdefault(("tally", row["choice"]), []).append((row["xmin"], row["count"] or 0))
    for row in row_versions(conn, "motions"):
        if row["id"] == motion_id:
            for choice in CHOICES:
                counters.setdefault(("motion", choice), []).append((row["xmin"], row[choice] or 0))
    for (_, choice), history in counters.items():
        before = 0
        for xmin, count in sorted(set(history)):
            units.setdefault(xmin, Observation()).delta[choice] += count - before
            before = count
    return list(units.values())


# --------------------------------------------------------------------------- SQLite


def wal_commits(database: bytes, wal: bytes, workdir: Path) -> Iterator[Path]:
    """The database as it stood after each commit recorded in a raw ``-wal`` file: frames are
    applied one by one onto the main file, and a database file is written at every commit
    frame (as an inspector holding a copy of the two files would)."""
    magic, _version, page_size, _seq, salt1, salt2 = struct.unpack(">IIIIII", wal[:24])
    assert magic in (0x377F0682, 0x377F0683), "not a WAL file"
    pages = bytearray(database)
    offset, n = 32, 0
    while offset + 24 + page_size <= len(wal):
        page_no, commit_size, s1, s2 = struct.unpack(">IIII", wal[offset:offset + 16])
        if (s1, s2) != (salt1, salt2):
            break  # frames of an earlier generation of the log
        data = wal[offset + 24:offset + 24 + page_size]
        start = (page_no - 1) * page_size
        if len(pages) < start + page_size:
            pages.extend(b"\0" * (start + page_size - len(pages)))
        pages[start:start + page_size] = data
        offset += 24 + page_size
        if commit_size:
            del pages[commit_size * page_size:]
            n += 1
            path = workdir / f"commit-{n:05d}.db"
            path.write_bytes(pages)
            yield path
            path.unlink()


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)


def sqlite_state(path: Path, motion_id: int) -> tuple[set[int], dict[str, int]]:
    """Who-voted rows and the counts of the motion's choices in one database file."""
    with _read_only(path) as db:
        voters = {m for (m,) in db.execute("SELECT member_id FROM ballots_cast WHERE motion_id = ?", (motion_id,))}
        counts = dict.fromkeys(CHOICES, 0)
        for choice, count in db.execute("SELECT choice, count FROM secret_tallies WHERE motion_id = ?", (motion_id,)):
            counts[choice] += count or 0
        row = db.execute("SELECT agree, disagree, abstain FROM motions WHERE id = ?", (motion_id,)).fetchone()
        for choice, value in zip(CHOICES, row or (0, 0, 0), strict=True):
            counts[choice] += value or 0
    db.close()
    return voters, counts


def sqlite_observations(database: bytes, wal: bytes, workdir: Path, motion_id: int) -> list[Observation]:
    """One observation per commit in the write-ahead log: who appeared, what grew."""
    units = []
    voters, counts = set(), dict.fromkeys(CHOICES, 0)
    for snapshot in wal_commits(database, wal, workdir):
        now_voters, now_counts = sqlite_state(snapshot, motion_id)
        units.append(Observation(voters=now_voters - voters,
                                 delta={c: now_counts[c] - counts[c] for c in CHOICES}))
        voters, counts = now_voters, now_counts
    return units


def physical_order(conn: Any, motion_id: int, dialect: str) -> list[int]:
    """The who-voted rows in the order they lie in the table (ctid / rowid)."""
    order = "ctid" if dialect == "postgresql" else "rowid"
    return [m for (m,) in conn.execute(text(
        f"SELECT member_id FROM ballots_cast WHERE motion_id = :m ORDER BY {order}"), {"m": motion_id})]


# --------------------------------------------------------------------------- text: logs, audit, Redis


def voter_patterns(member_id: int, name: str) -> list[re.Pattern[str]]:
    """How a line of text can name a voter: participant id, a member id field, the name."""
    return [re.compile(rf'"m{member_id}"'), re.compile(rf'"member_id":\s*{member_id}\b'), re.compile(re.escape(name))]


def text_observations(lines: Iterable[str], names: dict[int, list[re.Pattern[str]]]) -> list[Observation]:
    """One observation per line of text (a log line, an audit entry, a Redis envelope): the
    voters it names (``voter_patterns``) and the choices written in it (``"agree"``)."""
    units = []
    for line in lines:
        seen = Observation(voters={m for m, patterns in names.items() if any(p.search(line) for p in patterns)})
        for choice in CHOICES:
            seen.delta[choice] = line.count(json.dumps(choice))
        units.append(seen)
    return units
