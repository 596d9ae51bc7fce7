"""The audit log is hash-chained: altering, removing or rewriting entries directly in the
database is found by `python -m app verify-audit` and by the auditor's page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select, text

from meetings.foundation import audit
from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditChainHead, AuditEntry
from meetings.organisation import members
from meetings.organisation.members import Member, PeriodInput, PeriodKind


def cli_env(database, backend, postgres_schema, tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_DIR": str(tmp_path / "cli")}
    if backend == "sqlite":
        env["DATABASE_URL"] = database.engine.url.render_as_string(hide_password=False)
    else:
        env["DATABASE_URL"] = postgres_schema.plain_url + f"?options=-csearch_path%3D{postgres_schema.schema}"
    return env


def verify_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "app", "verify-audit", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def tamper(database, statement: str, **params) -> None:
    """Do what an attacker with database access would: switch the append-only trigger off."""
    with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
            conn.execute(text(statement), params)
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            conn.execute(text(statement), params)


def test_every_entry_links_to_the_one_before(database, world):
    with database.session() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        head = s.get(AuditChainHead, 1)
        report = audit.verify(s)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1)) and len(entries) > 20
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    assert report.intact and report.entries == len(entries)
    assert (head.seq, head.head_hash) == (report.head_seq, report.head_hash) == (entries[-1].seq,
                                                                                entries[-1].entry_hash)


def test_verify_command_finds_an_altered_row(database, world, backend, postgres_schema, tmp_path):
    env = cli_env(database, backend, postgres_schema, tmp_path)
    clean = verify_cli(env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Audit log intact:" in clean.stdout
    with database.session() as s:
        target = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.create")
                           .order_by(AuditEntry.seq)).first()
        seq = target.seq
    tamper(database, "UPDATE audit_log SET after = :after, actor_label = 'ai đó' WHERE seq = :seq",
           after='{"full_name": "Người Khác"}', seq=seq)
    broken = verify_cli(env)
    assert broken.returncode == 1
    assert f"BROKEN altered: entry #{seq} (id {target.id}" in broken.stdout
    assert "đã bị sửa: nội dung không khớp mã băm" in broken.stdout
    assert "BROKEN at 1 place(s)" in broken.stdout  # the entries after it still link to its stored hash


def test_verify_finds_removed_rows_in_the_middle_and_at_the_end(database, world, backend, postgres_schema, tmp_path):
    with database.session() as s:
        last = s.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
    tamper(database, "DELETE FROM audit_log WHERE seq IN (5, 6)")
    tamper(database, "DELETE FROM audit_log WHERE seq = :last", last=last)
    with database.session() as s:
        report = audit.verify(s)
    kinds = [(b.kind, b.seq) for b in report.breaks]
    assert ("removed", 5) in kinds and ("tail", last) in kinds
    removed = next(b for b in report.breaks if b.kind == "removed")
    assert removed.message == "Thiếu 2 mục (#5–#6) sau mục #4: đã bị xóa khỏi nhật ký."
    result = verify_cli(cli_env(database, backend, postgres_schema, tmp_path))
    assert result.returncode == 1 and "BROKEN removed: entry #5" in result.stdout
    assert f"BROKEN tail: entry #{last}" in result.stdout and "1 mục mới nhất đã bị xóa" in result.stdout


def test_a_rewritten_chain_is_caught_by_an_anchor(database, world, backend, postgres_schema, tmp_path):
    with database.session() as s:
        report = audit.verify(s)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.seq == 3))
        anchor = f"{report.head_seq}:{report.head_hash}"
        # Rewrite entry 3 and every hash after it, head row included: the chain alone holds.
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.seq >= 3).order_by(AuditEntry.seq)))
        prev = entry.prev_hash
        fixed = []
        for row in rows:
            note = "sửa lén" if row.seq == 3 else row.note
            digest = audit.entry_hash(prev, row.seq, row.at, row.actor_account_id, row.actor_label, row.actor_address,
                                      row.action, row.entity_type, row.entity_id, row.organisation_id, row.before,
                                      row.after, note)
            fixed.append((row.seq, note, prev, digest))
            prev = digest
    for seq, note, prev_hash, digest in fixed:
        tamper(database, "UPDATE audit_log SET note = :n, prev_hash = :p, entry_hash = :h WHERE seq = :s",
               n=note, p=prev_hash, h=digest, s=seq)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE audit_chain SET head_hash = :h"), {"h": prev})
    with database.session() as s:
        assert audit.verify(s).intact
    env = cli_env(database, backend, postgres_schema, tmp_path)
    result = verify_cli(env, "--anchor", anchor)
    assert result.returncode == 1 and "BROKEN anchor" in result.stdout and "chuỗi đã bị viết lại" in result.stdout
    assert verify_cli(env, "--anchor", "12:xyz").returncode == 2


def test_auditor_page_shows_where_the_chain_breaks(database, world, client_as):
    with database.session() as s:
        own = s.scalars(select(AuditEntry).where(AuditEntry.organisation_id == world.id("A"),
                                                 AuditEntry.action == "member.create")
                        .order_by(AuditEntry.seq)).first().seq
        other = s.scalars(select(AuditEntry).where(AuditEntry.organisation_id == world.id("C"))
                          .order_by(AuditEntry.seq)).first().seq
    aud = client_as("aud_x")
    page = aud.get(f"/orgs/{world.id('X')}/log")
    assert page.status_code == 200 and "Kiểm tra toàn vẹn" in page.text
    assert "Chuỗi mã băm toàn vẹn" in aud.get(f"/orgs/{world.id('X')}/log?verify=1").text
    tamper(database, "UPDATE audit_log SET note = 'x' WHERE seq IN (:a, :b)", a=own, b=other)
    text_ = aud.get(f"/orgs/{world.id('X')}/log?verify=1").text
    assert "Phát hiện 2 chỗ chuỗi mã băm bị phá vỡ" in text_
    assert f"Mục #{own} (member.create) đã bị sửa" in text_
    # The other commune's entry is reported without its details.
    assert "Một mục của tổ chức ngoài phạm vi theo dõi của đồng chí không khớp" in text_
    assert f"Mục #{other} (" not in text_
    cell_page = client_as("sec_a").get(f"/cells/{world.id('A')}/log?verify=1").text
    assert "Phát hiện 2 chỗ" in cell_page


def test_concurrent_writers_append_one_after_another(postgres_schema):
    """Writers in parallel transactions on PostgreSQL: the head row's lock orders them and
    the chain holds. (SQLite lets one writer in at a time by itself.)"""
    from tests.support.world import build_world

    if postgres_schema is None:
        pytest.skip("needs PostgreSQL (DATABASE_URL); CI always has it")
    database = postgres_schema.fresh()
    try:
        with database.session() as s:
            world = build_world(s)
        ids = [world.id(k) for k in ("a1", "a2", "b1", "b2", "b3", "c1", "c2", "a4")]
        barrier = threading.Barrier(len(ids))
        errors: list[BaseException] = []

        def write(member_id: int) -> None:
            try:
                with database.session() as s:
                    s.get(Member, member_id)
                    barrier.wait(timeout=10)
                    for n in range(3):
                        members.add_period(s, Actor.system("song song"), s.get(Member, member_id),
                                           PeriodInput(kind=PeriodKind.AWAY, start_on=f"202{n}-01-01",
                                                       end_on=f"202{n}-06-30", place=f"Nơi {n}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        with database.session() as s:
            report = audit.verify(s)
            assert report.intact, report.breaks
            periods = s.scalars(select(AuditEntry).where(AuditEntry.actor_label == "song song")).all()
            assert len(periods) == 3 * len(ids) and report.entries == report.head_seq
    finally:
        database.dispose()


def test_migration_chains_the_entries_written_before_it(tmp_path, backend, postgres_schema):
    """Revision 0006 numbers and hashes the log of a database that had no chain yet."""
    from alembic import command
    from sqlalchemy import text as sql

    from app.db import Database, make_engine
    from app.migrate import alembic_config

    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        cleanup = None
    else:
        schema = postgres_schema.schema + "_mig"
        admin = make_engine(postgres_schema.url)
        with admin.begin() as conn:
            conn.execute(sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sql(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(postgres_schema.url, connect_args={"options": f"-csearch_path={schema}"})

        def cleanup() -> None:
            with admin.begin() as conn:
                conn.execute(sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    def upgrade(target: str) -> None:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, target)

    try:
        upgrade("0005")
        with engine.begin() as conn:
            for n, note in enumerate(("Tạo chi bộ", None, "Sửa đổi có lý do"), 1):
                conn.execute(sql("INSERT INTO audit_log (at, actor_label, action, entity_type, entity_id, before, "
                                 "after, note) VALUES (:at, 'Quản trị', :action, 'Organisation', :id, NULL, "
                                 ":after, :note)"),
                             {"at": f"2026-01-0{n} 03:00:00.000000" if backend == "sqlite"
                              else f"2026-01-0{n} 03:00:00+00", "action": f"organisation.step{n}", "id": str(n),
                              "after": json.dumps({"name": f"Chi bộ thôn Số {n}", "n": n}), "note": note})
        upgrade("head")
        database = Database(engine)
        with database.session() as s:
            report = audit.verify(s)
            assert report.intact and report.entries == 3 and report.head_seq == 3
            audit.record(s, Actor.system("sau nâng cấp"), "organisation.step4", 4, None, {"n": 4},
                         entity_type="Organisation")
        with database.session() as s:
            report = audit.verify(s)
            assert report.intact and report.head_seq == 4
            assert [e.seq for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))] == [1, 2, 3, 4]
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(sql("DELETE FROM audit_log"))  # the triggers are back
    finally:
        engine.dispose()
        if cleanup is not None:
            cleanup()
