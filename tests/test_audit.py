"""The audit log is append-only and written in the same transaction as the change."""

import datetime as dt
import json
import logging

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.organisation import members
from meetings.organisation.members import Member, PeriodInput, PeriodKind


def test_database_refuses_to_change_or_delete_audit_rows(database, world):
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) > 0
    for statement in ("UPDATE audit_log SET actor_label = 'ai đó'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), database.session() as s:
            s.execute(text(statement))
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.actor_label == "ai đó")) == 0


def test_a_change_that_fails_leaves_neither_data_nor_audit_entry(database, world):
    with database.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    actor = Actor(world.accounts["sec_a"], "bí thư")
    with pytest.raises(RuntimeError), database.session() as s:
        m = s.get(Member, world.id("a2"))
        members.add_period(s, actor, m, PeriodInput(kind=PeriodKind.AWAY, start_on=dt.date(2026, 1, 1), place="Huế"))
        raise RuntimeError("connection lost before commit")
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before
        assert members.periods_of(s, world.id("a2")) == []


def test_entries_record_who_when_what_before_and_after(database, world, client_as, clock):
    from tests.support.web import post

    sec = client_as("sec_a")
    clock.advance(minutes=17, seconds=3)
    written_from = dt.datetime.now(dt.UTC)
    r = post(sec, f"/members/{world.id('a2')}/periods/new", {"kind": "away", "start_on": "2026-11-01", "place": "Cà Mau"})
    assert r.status_code == 303
    with database.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "period.create")
                          .order_by(AuditEntry.id.desc())).first()
    assert entry.actor_account_id == world.accounts["sec_a"]
    assert entry.actor_label == "Nguyễn Văn Ấn"
    # Dated by the wall clock when the row is written, never by the app's settable clock
    # (which here says 27 November): the log records when a change really happened.
    assert written_from <= entry.at <= dt.datetime.now(dt.UTC) and entry.at.date() != clock.now.date()
    assert entry.before is None and entry.after["place"] == "Cà Mau" and entry.after["start_on"] == "2026-11-01"
    assert entry.organisation_id == world.id("A")


def test_request_log_is_structured_json(app, world, client_as):
    import io

    from app import logs

    app.middleware_stack = None  # rebuild the stack with request logging on
    for m in app.user_middleware:
        if m.cls is logs.RequestLogMiddleware:
            m.kwargs["enabled"] = True
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("chibo.http")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        client_as("sec_a").get(f"/cells/{world.id('A')}")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    entry = [e for e in lines if e.get("path") == f"/cells/{world.id('A')}"][-1]
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["account"] == world.accounts["sec_a"]
    assert entry["ms"] >= 0 and entry["logger"] == "chibo.http" and entry["msg"] == "request"
