"""``python -m app``: serve, migrate, demo, create-account, import-members, notices, flags,
verify-audit, settings.

Every command reads DATABASE_URL (and the other settings) from the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from meetings.evaluation import monthly, three_month
from meetings.foundation import audit
from meetings.foundation.actors import Actor
from meetings.foundation.base import local_today, utcnow
from meetings.foundation.errors import DomainError
from meetings.organisation import accounts, member_import
from meetings.organisation.accounts import Role
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.proceedings import minutes

from .config import SETTINGS, Setting, Settings
from .db import Database, make_engine
from .demo import DEMO_ACCOUNTS, load_demo
from .factory import create_app
from .mailer import run_once
from .migrate import current_revision, migrate
from .server import server_config
from .tuning import tune_gc


def _database(settings: Settings) -> Database:

    return Database(make_engine(settings.database_url))


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    migrate(db.engine)
    print(f"Database at revision {current_revision(db.engine)} ({db.engine.dialect.name}).")
    db.dispose()
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    if args.reset:
        url = make_url(settings.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            print("--reset only starts over an SQLite demo database; drop and recreate a PostgreSQL "
                  "database with its own tools.", file=sys.stderr)
            return 2
        path = Path(url.database)
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        print(f"Removed {path}: starting the demo over.")
    db = _database(settings)
    migrate(db.engine)
    with db.session() as session:
        created = load_demo(session, local_today())
    db.dispose()
    print("Demo organisation loaded." if created else "Demo organisation already present.")
    print("Demo accounts (username / password — role):")
    for account in DEMO_ACCOUNTS:
        print(f"  {account.username:<10} / {account.password} — {account.role}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    os.umask(0o077)  # what the service writes (uploads, the database's WAL) is for its user only
    db = _database(settings)
    migrate(db.engine)
    db.dispose()
    print(f"Chi bộ trực tuyến: http://{args.host}:{args.port}/", flush=True)
    app = create_app(settings)
    tune_gc()
    uvicorn.Server(server_config(app, settings, host=args.host, port=args.port,
                                 proxy_headers=args.proxy_headers)).run()
    return 0


def cmd_create_account(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    migrate(db.engine)
    password = args.password or accounts.generate_password()
    try:
        with db.session() as session:
            member = None
            if args.member_card:
                member = session.scalar(select(Member).where(Member.card_number == args.member_card))
                if member is None:
                    raise DomainError(f"Không có đảng viên với số thẻ {args.member_card}.")
            org = None
            if args.org:
                org = session.scalar(select(Organisation).where(Organisation.code == args.org.upper()))
                if org is None:
                    raise DomainError(f"Không có tổ chức với mã {args.org}.")
            actor = Actor.system("dòng lệnh")
            account = accounts.create_account(
                session, actor, username=args.username,
                password=password, display_name=args.name or (member.full_name if member else args.username),
                member=member, must_change_password=not args.password,
            )
            if args.role:
                accounts.grant_role(session, actor, account, Role(args.role), org)
    except DomainError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"Account {args.username} created." + ("" if args.password else f" Temporary password: {password}"))
    return 0


def cmd_import_members(settings: Settings, args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    db = _database(settings)
    migrate(db.engine)
    try:
        with db.session() as session:
            cell = session.scalar(select(Organisation).where(Organisation.code == args.cell.upper()))
            if cell is None:
                raise DomainError(f"Không có chi bộ với mã {args.cell}.")
            created = member_import.import_members(session, Actor.system("dòng lệnh"), cell, data, local_today())
    except member_import.ImportFailed as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        for error in exc.errors:
            print(f"  dòng {error.line}: {error.message}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"Imported {len(created)} members into {args.cell.upper()}.")
    return 0


def cmd_notices(settings: Settings, args: argparse.Namespace) -> int:
    """One pass of the notice job: extend schedules, create due notices, send e-mail."""

    db = _database(settings)
    migrate(db.engine)
    try:
        report = run_once(db, settings, utcnow())
    finally:
        db.dispose()
    print(f"Notices created: {report.created}, e-mails sent: {report.sent}, failed: {report.failed}, "
          f"expired: {report.expired}.")
    return 1 if report.failed else 0


def cmd_verify_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Walk the audit log's hash chain; exit 1 and list the breaks if anything was altered,
    removed or rewritten (``--anchor SEQ:HASH`` checks a head recorded earlier)."""
    anchors = []
    for anchor in args.anchor or []:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            print(f"Error: --anchor must be SEQ:HASH (64 hex digits), not {anchor!r}", file=sys.stderr)
            return 2
        anchors.append((int(seq), digest.lower()))
    db = _database(settings)
    try:
        with db.session() as session:
            report = audit.verify(session, anchors=anchors)
            versions = session.scalar(select(func.count()).select_from(minutes.MinutesVersion)) or 0
            altered = [(v.meeting_id, v.version, problems) for v, problems in minutes.check_all(session)]
    finally:
        db.dispose()
    for b in report.breaks:
        where = f"entry #{b.seq}" + (f" (id {b.entry_id}" + (f", {b.at:%Y-%m-%d %H:%M:%S} UTC" if b.at else "")
                                        + ")" if b.entry_id else "")
        print(f"BROKEN {b.kind}: {where}: {b.message}")
    status = "intact" if report.intact else f"BROKEN at {len(report.breaks)} place(s)"
    print(f"Audit log {status}: {report.entries} entries; head #{report.head_seq} {report.head_hash}")
    # Each adopted version of the minutes against its seal and the hash the log kept at adoption.
    for meeting_id, number, problems in altered:
        for problem in problems:
            print(f"BROKEN minutes: meeting {meeting_id} version {number}: {problem}")
    print(f"Adopted minutes {'intact' if not altered else f'ALTERED in {len(altered)} version(s)'}: "
          f"{versions} version(s) checked")
    return 0 if report.intact and not altered else 1


def cmd_flags(settings: Settings, args: argparse.Namespace) -> int:
    """Recompute every member's three-month counters for a year (idempotent; notices go out
    only for levels that change)."""
    year = args.year or local_today().year
    db = _database(settings)
    migrate(db.engine)
    try:
        with db.session() as session:
            cells = list(session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.CELL)))
            changes = three_month.recheck_cells(session, cells, year, utcnow())
    finally:
        db.dispose()
    raised = sum(1 for c in changes if c.after > c.before)
    print(f"Flags for {year} rechecked: {raised} raised, {len(changes) - raised} lowered.")
    return 0


def shown(setting: Setting, value: Any) -> str:
    """A setting's value as ``settings`` prints it: secrets and passwords in URLs hidden,
    since the output ends up in terminals, tickets and chat."""
    if setting.secret:
        return "(set, hidden)" if value else "(empty)"
    if isinstance(value, str) and "://" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.password:
            host = parts.netloc.rsplit("@", 1)[1]
            value = urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return repr(value)


def cmd_rebuild_aggregates(settings: Settings, args: argparse.Namespace) -> int:
    """Recompute the cell-month figures the audit reads (``meetings.evaluation.monthly``) from
    the meetings, rosters and minutes: after data written around the domain (a bulk load, SQL
    by hand). ``--check`` only compares them and exits 1 where they differ."""
    db = _database(settings)
    migrate(db.engine)
    try:
        with db.engine.begin() as conn:
            if args.check:
                kept, fresh = monthly.stored(conn), monthly.recompute(conn)
                differ = sorted(k for k in kept.keys() | fresh.keys() if kept.get(k) != fresh.get(k))
                for cell_id, month in differ[:50]:
                    print(f"DIFFERS: cell {cell_id}, {month:%m/%Y}")
                print(f"Cell-month figures {'up to date' if not differ else f'DIFFER in {len(differ)} row(s)'}: "
                      f"{len(fresh)} row(s) recomputed")
                return 1 if differ else 0
            rows = monthly.rebuild(conn)
    finally:
        db.dispose()
    print(f"Cell-month figures rebuilt: {rows} row(s).")
    return 0


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    for setting in SETTINGS:
        print(f"{setting.name}={shown(setting, settings.values[setting.name])}\n    {setting.help}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Chi bộ trực tuyến — online party-cell meetings.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="migrate, then run the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* from a reverse proxy")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="create or upgrade the database schema (idempotent)").set_defaults(func=cmd_migrate)
    demo = sub.add_parser("demo", help="load the demo organisation (Quảng Trị) and print its accounts")
    demo.add_argument("--reset", action="store_true",
                      help="delete the SQLite database first, so the demo starts over as new")
    demo.set_defaults(func=cmd_demo)

    create = sub.add_parser("create-account", help="create a login account, optionally linked to a member and a role")
    create.add_argument("--username", required=True)
    create.add_argument("--name", help="display name")
    create.add_argument("--password", help="omit to generate a temporary one (changed at first login)")
    create.add_argument("--member-card", help="party card number of the member this account belongs to")
    create.add_argument("--role", choices=["member", "secretary", "deputy", "auditor", "admin"])
    create.add_argument("--org", help="organisation code the role applies to (none: platform-wide admin)")
    create.set_defaults(func=cmd_create_account)

    imp = sub.add_parser("import-members", help="import a cell's members from a UTF-8 CSV file (all or nothing)")
    imp.add_argument("--cell", required=True, help="cell code, e.g. QT-CL-ANMY")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import_members)

    sub.add_parser("notices", help="run the notice job once (schedules ahead, reminders, e-mail)").set_defaults(
        func=cmd_notices)
    flags = sub.add_parser("flags", help="recheck the three-month rule for every member (idempotent)")
    flags.add_argument("--year", type=int, help="calendar year (default: this year)")
    flags.set_defaults(func=cmd_flags)
    verify = sub.add_parser("verify-audit", help="verify the audit log's hash chain; exit 1 where it breaks")
    verify.add_argument("--anchor", action="append", metavar="SEQ:HASH",
                        help="an entry's hash recorded earlier (printed by a previous run); repeatable")
    verify.set_defaults(func=cmd_verify_audit)
    rebuild = sub.add_parser("rebuild-aggregates", help="recompute the cell-month figures the audit reads "
                             "(after data written around the application)")
    rebuild.add_argument("--check", action="store_true", help="only compare; exit 1 where they differ")
    rebuild.set_defaults(func=cmd_rebuild_aggregates)
    sub.add_parser("settings", help="list the settings and their current values").set_defaults(func=cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(Settings.from_env(), args))
