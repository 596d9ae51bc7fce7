"""A secret ballot stays secret from whoever holds the database files, the audit log and the
logs: twelve members vote in the room, in a random order, with random choices (four of
each), and an inspector then tries every way tests/support/inspector.py knows to link each
named voter to a choice. None may do better than the published result alone (chance).

Runs on SQLite (the write-ahead log read raw, commit by commit) and on PostgreSQL (every row
version still in the heap pages, dead ones too, through ``pageinspect``, with ``xmin`` and
``ctid``), through a real server and real WebSocket clients.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import event, inspect, select

from app.config import Settings
from app.logs import JsonFormatter
from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import utcnow
from meetings.organisation.organisations import Organisation
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus, PilotApproval
from tests.support import inspector
from tests.support.inspector import CHOICES
from tests.support.room_fixtures import free_port, running_server
from tests.support.rtc_client import RoomClient
from tests.support.world import PASSWORD, add_voters, build_world

pytestmark = pytest.mark.anyio

VOTERS = 12


@dataclass
class Electorate:
    meeting_id: int
    #: member id → (username, full name)
    voters: dict[int, tuple[str, str]]


@pytest.fixture
def electorate(database) -> Electorate:  # type: ignore[no-untyped-def]
    if database.engine.dialect.name == "sqlite":
        # The inspector reads the write-ahead log as it stands: nothing is checkpointed away.
        event.listen(database.engine, "connect", lambda conn, _: conn.execute("PRAGMA wal_autocheckpoint=0"))
    actor = Actor.system("test")
    with database.session() as s:
        w = build_world(s)
        cell = s.get(Organisation, w.id("A"))
        s.add(PilotApproval(cell_id=cell.id, decision_number="15-QĐ/ĐU", decided_on=dt.date(2026, 1, 5),
                            approving_org_id=w.id("X"), approving_body="Đảng ủy xã Xuân Hòa",
                            valid_from=dt.date(2026, 1, 5)))
        now = utcnow()
        meeting = mt.create_meeting(s, actor, cell, kind=MeetingKind.REGULAR, starts_at=now, remote_open=True)
        mt.change_status(s, actor, meeting, MeetingStatus.OPEN, now=now)
        return Electorate(meeting_id=meeting.id, voters=add_voters(s, cell, meeting.id, VOTERS))


class LogCapture(logging.Handler):
    """Every line the app logs, as the JSON a log reader gets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Held:
    motion_id: int
    truth: dict[int, str]
    result: dict[str, int]
    logs: list[str]
    #: SQLite only: the main file and the write-ahead log, copied while the server ran.
    files: tuple[bytes, bytes] | None


async def hold_secret_ballot(database, electorate: Electorate, tmp_path: Path) -> Held:  # type: ignore[no-untyped-def]
    rng = random.Random(20261127)
    choices = [c for c in CHOICES for _ in range(VOTERS // len(CHOICES))]
    rng.shuffle(choices)
    truth = dict(zip(electorate.voters, choices, strict=True))
    order = list(electorate.voters)
    rng.shuffle(order)
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path / "var"), SECRET_KEY="ballot-test-secret-0123456789",
                                 LOG_REQUESTS=True, LOG_LEVEL="DEBUG", ROOM_GRACE_SECONDS=1.0,
                                 RELAY_VIDEO_SENDERS=100)
    capture = LogCapture()
    loggers = [logging.getLogger(name) for name in ("chibo", "uvicorn", "sqlalchemy")]
    async with running_server(settings, database, free_port()) as base:
        for logger in loggers:
            logger.addHandler(capture)
        chair = RoomClient(base, "sec_a", PASSWORD, electorate.meeting_id, media=False)
        clients = {m: RoomClient(base, username, PASSWORD, electorate.meeting_id, media=False)
                   for m, (username, _) in electorate.voters.items()}
        try:
            await chair.join()
            await asyncio.gather(*(c.join() for c in clients.values()))
            await chair.send({"type": "open_vote", "title": "Bầu cử bí thư chi bộ", "kind": "secret"})
            motion_id = (await chair.wait_for("vote"))["motion"]["id"]
            for member_id in order:
                client, choice = clients[member_id], truth[member_id]
                await client.send({"type": "cast", "motion_id": motion_id, "choice": choice,
                                   "pad": " " * (8 - len(choice))})
                await client.wait_for("vote_cast", motion_id=motion_id)
            await chair.send({"type": "close_vote", "motion_id": motion_id})
            closed = await chair.wait_until(lambda m: m["type"] == "vote" and m["motion"]["status"] == "closed")
            result = {c: closed["motion"]["result"][c] for c in CHOICES}
            files = None
            if database.engine.dialect.name == "sqlite":
                path = Path(database.engine.url.database)
                files = (path.read_bytes(), Path(f"{path}-wal").read_bytes())
        finally:
            await asyncio.gather(chair.close(), *(c.close() for c in clients.values()), return_exceptions=True)
            for logger in loggers:
                logger.removeHandler(capture)
    return Held(motion_id, truth, result, capture.lines, files)


async def test_an_inspector_with_the_database_files_cannot_tell_who_voted_what(database, electorate, tmp_path):
    held = await hold_secret_ballot(database, electorate, tmp_path)
    truth, result = held.truth, held.result
    # The tally is exact; the published result alone places a voter right a third of the time.
    assert result == dict(Counter(truth.values()))
    chance = inspector.chance(truth, result)
    assert chance == pytest.approx(1 / 3)
    dialect = database.engine.dialect.name

    with database.engine.connect() as conn:
        # Who voted is recorded, and nothing else: no id, no time, and the rows lie in member
        # order, not in the order the ballots came (which was shuffled).
        assert {c["name"] for c in inspect(conn).get_columns("ballots_cast")} == {"motion_id", "member_id"}
        order = inspector.physical_order(conn, held.motion_id, dialect)
        assert order == sorted(truth)

        if dialect == "postgresql":
            inspector.ensure_pageinspect(conn)
            # Row versions, dead ones included, by the transaction that wrote them.
            seen = inspector.postgres_observations(conn, held.motion_id)
            voted_in = {v["xmin"] for v in inspector.row_versions(conn, "ballots_cast")
                        if v["motion_id"] == held.motion_id}
            counted_in = {v["xmin"] for v in inspector.row_versions(conn, "secret_tallies")
                          if v["motion_id"] == held.motion_id}
            # One transaction wrote every who-voted row and every count: nothing to tell apart.
            assert len(voted_in) == 1 and voted_in == counted_in
        else:
            assert held.files is not None
            workdir = tmp_path / "inspector"
            workdir.mkdir()
            seen = inspector.sqlite_observations(*held.files, workdir, held.motion_id)
            appeared = [o.voters for o in seen if o.voters]
            assert len(seen) > 20  # the log really was read commit by commit
            assert appeared == [set(truth)]  # all voters appear in one commit, with all the counts
        assert inspector.accuracy(inspector.link(seen), truth, result) <= chance

        # The audit log: every entry, all its fields.
        names = {m: inspector.voter_patterns(m, electorate.voters[m][1]) for m in truth}
        entries = [json.dumps(dict(row._mapping), default=str, ensure_ascii=False)
                   for row in conn.execute(select(AuditEntry.__table__))]
        audit_seen = inspector.text_observations(entries, names)
        assert any(o.delta["agree"] for o in audit_seen)  # the result is in it
        assert inspector.accuracy(inspector.link(audit_seen), truth, result) <= chance

    # The application's logs, every line at DEBUG level: they name the voters who joined, and
    # never a choice beside them.
    log_seen = inspector.text_observations(held.logs, names)
    assert sum(bool(o.voters) for o in log_seen) >= len(truth)
    assert inspector.accuracy(inspector.link(log_seen), truth, result) <= chance
