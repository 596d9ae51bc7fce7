"""Benchmark of the higher committees' audit on a province-size organisation.

    python bench/audit.py                      # both databases, 3,000 cells, ~60,000 members
    python bench/audit.py --db sqlite --cells 300 --repeat 3

For each database (SQLite in a temporary file; PostgreSQL at --pg-url in a schema of its own,
dropped afterwards) it generates one province: communes of 30 cells, 10–30 members per cell
(away, exempt, transferred and suspended members among them), one year of meetings with
rosters, minutes and dues — written with bulk inserts (executemany on SQLite, COPY on
PostgreSQL), not the ORM. The three-month flags are then computed by the real
``three_month.recheck_cells``, and the cell-month figures by the real ``monthly.rebuild`` (what
``python -m app rebuild-aggregates`` runs after data written around the domain). It measures, through the real application (``create_app``,
the ``@view`` pages, a logged-in auditor, HTTP via Starlette's TestClient):

* the province's audit page for the year,
* one commune's audit page,
* one member's yearly record,
* one commune's year-end records (every member's figures, flags and review),

and, in the same run, the bare SQL that the province page needs — the same statements that
``regularity.audit`` sends (the cells below the province with their spans from the dated
links, their cell-month figures, flags, away members and duration overrides, the child
committees' rows) sent as plain text through the database driver, rows fetched and nothing
else — and prints the ratio. The medians of
``--repeat`` runs after one warm-up are reported; the last lines, one per database, are
machine-readable:

    db=sqlite cells=3000 members=59950 province_page_ms=… bare_sql_ms=… ratio=… commune_page_ms=… …
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402

from app.db import Database, make_engine  # noqa: E402
from app.migrate import migrate  # noqa: E402

YEAR = 2026
NOW = dt.datetime(YEAR + 1, 1, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
PASSWORD = "bench-password-2026"
CELLS_PER_COMMUNE = 30
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Quang", "Hữu", "Thu", "Ngọc", "Xuân", "Thanh"]
GIVEN = ["Hùng", "Dũng", "Tuấn", "Hải", "Bình", "Sơn", "Lan", "Hương", "Thảo", "Phương", "Nga", "Trang", "Hà"]


# --------------------------------------------------------------------------- generation


@dataclass
class Province:
    province_id: int = 0
    commune_ids: list[int] = field(default_factory=list)
    cells: int = 0
    members: int = 0
    meetings: int = 0
    attendance: int = 0
    #: A member of the first commune (for the record page).
    sample_member: int = 0


class Writer:
    """Bulk rows into a table: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.raw = engine.raw_connection()
        self.cursor = self.raw.cursor()

    def value(self, v: Any) -> Any:
        if self.pg:
            return v
        if isinstance(v, dt.datetime):
            return v.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, bool):
            return int(v)
        return v

    def rows(self, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]] | list[Sequence[Any]]) -> int:
        count = 0
        if self.pg:
            with self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append([self.value(v) for v in row])
            if len(batch) >= 20_000:
                self.cursor.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            self.cursor.executemany(sql, batch)
            count += len(batch)
        return count

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()


def _standing(periods: list[tuple[str, dt.date, dt.date | None, int | None]], day: dt.date) -> str | None:
    kinds = {kind for kind, start, end, _ in periods if start <= day and (end is None or day <= end)}
    for kind in ("suspended", "transfer_out", "exempt"):
        if kind in kinds:
            return kind
    return None


def generate(engine: Engine, cells: int, seed: int = 7) -> Province:
    """One province of ``cells`` cells in communes of 30, and its year."""
    rng = random.Random(seed)
    w = Writer(engine)
    created = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    founded = dt.date(2025, 7, 1)
    p = Province()
    orgs: list[tuple[Any, ...]] = []
    links: list[tuple[Any, ...]] = []
    oid = 1
    p.province_id = oid
    orgs.append((oid, "province", "Tỉnh ủy Thử Tải", "BENCH", None, f"/{oid}/", 0, False, founded, created))
    links.append((oid, None, founded))
    cell_rows: list[tuple[int, int, bool]] = []  # (cell id, commune id, has committee)
    for c in range(max(1, (cells + CELLS_PER_COMMUNE - 1) // CELLS_PER_COMMUNE)):
        oid += 1
        commune = oid
        p.commune_ids.append(commune)
        orgs.append((commune, "commune", f"Đảng ủy xã Số {c + 1}", f"B-{c + 1}", p.province_id,
                     f"/{p.province_id}/{commune}/", 1, False, founded, created))
        links.append((commune, p.province_id, founded))
        for k in range(min(CELLS_PER_COMMUNE, cells - c * CELLS_PER_COMMUNE)):
            oid += 1
            committee = rng.random() < 0.35
            orgs.append((oid, "cell", f"Chi bộ thôn {k + 1} xã Số {c + 1}", f"B-{c + 1}-{k + 1}", commune,
                         f"/{p.province_id}/{commune}/{oid}/", 2, committee, founded, created))
            links.append((oid, commune, founded))
            cell_rows.append((oid, commune, committee))
    p.cells = len(cell_rows)
    w.rows("organisations", ["id", "kind", "name", "code", "parent_id", "path", "depth", "has_committee",
                             "created_on", "created_at"], orgs)
    w.rows("organisation_parent_links", ["organisation_id", "parent_id", "valid_from"], links)

    # Members, their cells and periods.
    people: list[tuple[Any, ...]] = []
    memberships: list[tuple[Any, ...]] = []
    period_rows: list[tuple[Any, ...]] = []
    by_cell: dict[int, list[tuple[int, str, str, bool]]] = {}  # cell → (id, name, status, away)
    periods: dict[int, list[tuple[str, dt.date, dt.date | None, int | None]]] = {}
    attached: dict[int, list[tuple[int, str, dt.date, dt.date]]] = {}  # host cell → members
    mid = 0
    pid = 0
    card = 40_000_000
    for index, (cell_id, _commune, _committee) in enumerate(cell_rows):
        neighbours = [c for c, com, _ in cell_rows if com == _commune and c != cell_id] or [cell_id]
        for _ in range(rng.randint(10, 30)):
            mid += 1
            name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
            probationary = rng.random() < 0.05
            admitted = dt.date(2025, rng.randint(1, 12), 15) if probationary else dt.date(rng.randint(1980, 2022), 5, 19)
            card += 1
            people.append((mid, name, dt.date(1970 + mid % 30, 1 + mid % 12, 1 + mid % 28),
                           None if probationary else str(card), admitted, "probationary" if probationary else "official",
                           cell_id, created, created))
            memberships.append((mid, cell_id, admitted))
            mine: list[tuple[str, dt.date, dt.date | None, int | None]] = []
            away = rng.random() < 0.15
            roll = rng.random()
            if away:
                mine.append(("away", dt.date(2025, rng.randint(1, 12), 1), None, None))
            if roll < 0.02:
                mine.append(("exempt", dt.date(YEAR, rng.randint(1, 12), 1), None, None))
            elif roll < 0.025:
                start = dt.date(YEAR, rng.randint(2, 6), 1)
                host = rng.choice(neighbours)
                end = start + dt.timedelta(days=180)
                mine.append(("transfer_out", start, end, host))
                attached.setdefault(host, []).append((mid, name, start, end))
            elif roll < 0.027:
                mine.append(("suspended", dt.date(YEAR, rng.randint(1, 12), 1), None, None))
            for kind, start, end, host in mine:
                pid += 1
                period_rows.append((pid, mid, kind, start, end, "TP. Hồ Chí Minh" if kind == "away" else None,
                                    "Đảng bộ nơi đến" if kind == "transfer_out" else None, host,
                                    "01-QĐ" if kind != "away" else None,
                                    "full" if kind == "exempt" else None, created))
            periods[mid] = mine
            by_cell.setdefault(cell_id, []).append((mid, name, "probationary" if probationary else "official", away))
            if index == 0 and not p.sample_member and not mine:
                p.sample_member = mid
    p.members = mid
    w.rows("members", ["id", "full_name", "birth_date", "card_number", "admitted_on", "status", "home_cell_id",
                       "created_at", "updated_at"], people)
    w.rows("memberships", ["member_id", "cell_id", "start_on"], memberships)
    w.rows("member_periods", ["id", "member_id", "kind", "start_on", "end_on", "place", "host_org_name",
                              "host_cell_id", "decision_number", "exempt_kind", "created_at"], period_rows)
    w.commit()

    # A year of meetings per cell, their rosters, minutes and dues.
    meeting_rows: list[tuple[Any, ...]] = []
    attendance_rows: list[tuple[Any, ...]] = []
    minutes_rows: list[tuple[Any, ...]] = []
    dues_rows: list[tuple[Any, ...]] = []
    meeting_id = 0
    vn = dt.timezone(dt.timedelta(hours=7))

    def add_meeting(cell_id: int, commune: int, kind: str, day: dt.date, planned: dt.date | None,
                    combined: bool, length: int) -> tuple[int, dt.datetime, dt.datetime]:
        nonlocal meeting_id
        meeting_id += 1
        start = dt.datetime.combine(day, dt.time(19, 30), tzinfo=vn)
        end = start + dt.timedelta(minutes=length)
        label = {"regular": "Sinh hoạt thường kỳ", "thematic": "Sinh hoạt chuyên đề", "committee": "Họp chi ủy"}[kind]
        meeting_rows.append((meeting_id, cell_id, commune, kind, f"{label} tháng {day.month}/{day.year}",
                             "Học tập và làm theo Bác" if combined or kind == "thematic" else None, combined, start,
                             120, "Nhà văn hóa", "closed", start, end, f"{uuid.uuid4()}@bench", 0, created, created,
                             planned, True, start, end, False, False))
        return meeting_id, start, end

    for cell_id, commune, committee in cell_rows:
        rule_day = rng.randint(1, 20)
        separate_thematic = rng.random() < 0.3
        roster = by_cell.get(cell_id, [])
        guests = attached.get(cell_id, [])
        for month in range(1, 13):
            planned = dt.date(YEAR, month, rule_day)
            kinds: list[tuple[str, dt.date, bool]] = []
            if rng.random() >= 0.04:  # 4 % of months without their regular meeting
                day = planned
                if rng.random() < 0.08:  # 8 % held late
                    day = min(planned + dt.timedelta(days=rng.randint(8, 20)), dt.date(YEAR, month, 28))
                kinds.append(("regular", day, month % 3 == 0 and not separate_thematic))
            if separate_thematic and month % 3 == 2 and rng.random() >= 0.05:
                kinds.append(("thematic", dt.date(YEAR, month, 25), False))
            if committee and kinds and kinds[0][0] == "regular":
                add_meeting(cell_id, commune, "committee", kinds[0][1] - dt.timedelta(days=3), None, False, 60)
            for kind, day, combined in kinds:
                length = rng.randint(60, 85) if rng.random() < 0.05 else rng.randint(95, 150)
                if combined:
                    length += 30
                mid_, start, end = add_meeting(cell_id, commune, kind, day, planned if kind == "regular" else None,
                                               combined, length)
                roll = rng.random()
                if roll < 0.92:
                    later = dt.timedelta(minutes=10) if roll < 0.7 else dt.timedelta(days=rng.randint(1, 10))
                    content = json.dumps({"meeting": mid_, "text": "Biên bản sinh hoạt chi bộ"}, ensure_ascii=False)
                    minutes_rows.append((mid_, 1, content, "0" * 64, end + later))
                for member_id, name, status, away in roster:
                    standing = _standing(periods[member_id], day)
                    expected = standing is None
                    if not expected:
                        state, mode, excused = "not_expected", None, None
                    else:
                        r = rng.random()
                        if away:
                            state, mode, excused = (("present", "online", None) if r < 0.6 else
                                                    ("absent", None, True) if r < 0.92 else ("absent", None, False))
                        else:
                            state, mode, excused = (("present", "in_person", None) if r < 0.88 else
                                                    ("absent", None, True) if r < 0.97 else ("absent", None, False))
                    attendance_rows.append((
                        mid_, member_id, name, {"transfer_out": "transferred_out"}.get(standing or "", standing)
                        or status, status, expected, status == "official" and standing in (None, "exempt"), True,
                        away and expected, state, mode, excused,
                        "Ốm" if excused else None, "secretary", True, rng.randint(60, 140) if mode == "online" else None))
                for member_id, name, start_on, end_on in guests:
                    if start_on <= day <= end_on:
                        attendance_rows.append((mid_, member_id, name, "attached", "official", True, False, False,
                                                False, "present", "in_person", None, None, "secretary", True, None))
                if kind == "regular":
                    for member_id, _name, _status, _away in roster:
                        if _standing(periods[member_id], day) in (None,):
                            dues_rows.append((member_id, cell_id, dt.date(YEAR, month, 1),
                                              "unpaid" if rng.random() < 0.03 else "paid_at_meeting", mid_, end))
    p.meetings = meeting_id
    w.rows("meetings", ["id", "cell_id", "supervisor_id", "kind", "title", "topic", "combined_thematic", "starts_at",
                        "expected_minutes", "place", "status", "opened_at", "closed_at", "uid", "sequence",
                        "created_at", "updated_at", "occurrence_on", "touched", "actual_start_at", "actual_end_at",
                        "remote_open", "lobby"], meeting_rows)
    p.attendance = w.rows("attendance", ["meeting_id", "member_id", "full_name", "standing", "member_status",
                                         "expected", "may_vote", "in_roll", "away", "status", "mode", "excused",
                                         "reason_text", "source", "confirmed", "online_minutes"], attendance_rows)
    w.rows("minutes_versions", ["meeting_id", "version", "content", "content_hash", "adopted_at"], minutes_rows)
    seen: set[tuple[int, dt.date]] = set()
    w.rows("dues", ["member_id", "cell_id", "month", "status", "meeting_id", "recorded_at"],
           [d for d in dues_rows if (d[0], d[2]) not in seen and not seen.add((d[0], d[2]))])  # type: ignore[func-returns-value]
    w.commit()
    if w.pg:  # keep the sequences ahead of the ids written here
        for table in ("organisations", "members", "member_periods", "meetings"):
            w.cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        w.commit()
    w.close()
    return p


def accounts(db: Database, p: Province) -> None:
    """A province auditor, a commune auditor (and the member behind the sample record)."""
    from meetings.foundation.actors import Actor
    from meetings.organisation import accounts as acc
    from meetings.organisation.accounts import Role
    from meetings.organisation.organisations import Organisation

    acc.configure_hashing(time_cost=1, memory_cost=1024)
    actor = Actor.system("bench")
    with db.session() as s:
        for username, org_id in (("tinh", p.province_id), ("xa", p.commune_ids[0])):
            account = acc.create_account(s, actor, username=username, password=PASSWORD, display_name=username,
                                         must_change_password=False)
            acc.grant_role(s, actor, account, Role.AUDITOR, s.get(Organisation, org_id))


def analyse(engine: Engine) -> None:
    """Statistics for the planner, and (PostgreSQL) the bulk load's WAL flushed, so that a
    checkpoint does not run during the measurements."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            try:
                conn.execute(text("CHECKPOINT"))
            except Exception as exc:  # not a superuser: measure anyway
                print(f"(no CHECKPOINT: {exc.__class__.__name__})", file=sys.stderr)
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# --------------------------------------------------------------------------- measurement


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: caches, plans, first connection
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bare_sql(engine: Engine, p: Province) -> Callable[[], object]:
    """The province page's queries as the driver receives them — the same SQL text and
    parameters that ``regularity.audit`` hands to the cursor, captured once — sent through the
    driver: rows fetched, no ORM, no type conversion, no Python evaluation — the floor the page
    stands on."""
    from sqlalchemy import event

    from meetings.evaluation import regularity
    from meetings.organisation import organisations
    from meetings.organisation.organisations import Organisation

    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append((statement, parameters))

    with Database(engine).session() as s:
        province = s.get(Organisation, p.province_id)
        assert province is not None
        plan = regularity.plan(s, province, YEAR, None)
        children = sorted(set(plan.fast.values()) | {span.child_id for c in plan.detailed for span in plan.spans_of[c]})
        # Every statement audit() sends for the province: its cells with their spans under it
        # (the dated links walked), the cells' figures, flags and away members, and the
        # children's rows (names) for the table.
        statements = [organisations.cells_during_statement(province.id, dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)),
                      *regularity.statements(plan, YEAR, None, NOW, engine.dialect.name).values(),
                      regularity.children_statement(children)]
        conn = s.connection()
        event.listen(engine, "before_cursor_execute", capture)
        try:
            for stmt in statements:
                conn.execute(stmt).fetchall()
        finally:
            event.remove(engine, "before_cursor_execute", capture)
    assert len(sent) == len(statements), sent

    def run() -> int:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            n = 0
            for statement, parameters in sent:
                cursor.execute(statement, parameters)
                n += len(cursor.fetchall())
            return n
        finally:
            raw.close()

    return run


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[Engine]:
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="chibo-bench-"))
        engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run(kind: str, cells: int, repeat: int, pg_url: str) -> str:
    from starlette.testclient import TestClient

    from app.config import Settings
    from app.factory import create_app
    from meetings.evaluation import monthly, three_month

    with database(kind, pg_url) as engine:
        migrate(engine)
        t0 = time.perf_counter()
        p = generate(engine, cells)
        db = Database(engine)
        accounts(db, p)
        generated = time.perf_counter() - t0
        t1 = time.perf_counter()
        with db.session() as s:
            from sqlalchemy import select

            from meetings.organisation.organisations import Organisation, OrgKind

            cell_ids = list(s.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.CELL)))
            changes = three_month.recheck_cells(s, cell_ids, YEAR, NOW, notify=False)
        flags = time.perf_counter() - t1
        t2 = time.perf_counter()
        with engine.begin() as conn:
            figures = monthly.rebuild(conn)
        rebuilt = time.perf_counter() - t2
        analyse(engine)
        print(f"[{kind}] generated {p.cells} cells, {p.members} members, {p.meetings} meetings, "
              f"{p.attendance} roster lines in {generated:.1f} s; three-month flags for everyone in {flags:.1f} s "
              f"({sum(1 for c in changes if c.after >= three_month.Level.REMOVAL_REVIEW)} to consider for removal); "
              f"{figures} cell-month figures rebuilt in {rebuilt:.1f} s",
              flush=True)
        settings = Settings.from_env({}, DATA_DIR=tempfile.mkdtemp(prefix="chibo-bench-data-"), SECRET_KEY="b" * 32,
                                     LOG_REQUESTS=False, LOG_LEVEL="WARNING", NOTICE_INTERVAL=0)
        app = create_app(settings, database=db, clock=lambda: NOW.astimezone(dt.UTC))
        results: dict[str, float] = {}
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:
            def login(username: str) -> None:
                import re

                client.cookies.clear()
                token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
                r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                                follow_redirects=False)
                assert r.status_code == 303, r.text

            def page(url: str) -> Callable[[], object]:
                def get() -> object:
                    r = client.get(url)
                    assert r.status_code == 200, (url, r.status_code, r.text[:500])
                    return r
                return get

            login("tinh")
            results["province_page_ms"] = median_ms(page(f"/orgs/{p.province_id}/audit?year={YEAR}"), repeat)
            results["bare_sql_ms"] = median_ms(bare_sql(engine, p), repeat)
            login("xa")
            results["commune_page_ms"] = median_ms(page(f"/orgs/{p.commune_ids[0]}/audit?year={YEAR}"), repeat)
            results["member_record_ms"] = median_ms(page(f"/members/{p.sample_member}/record?year={YEAR}"), repeat)
            results["commune_records_ms"] = median_ms(page(f"/orgs/{p.commune_ids[0]}/records?year={YEAR}"), repeat)
        db.dispose()
    ratio = results["province_page_ms"] / results["bare_sql_ms"]
    name = "postgresql" if kind == "postgresql" else "sqlite"
    fields = " ".join(f"{k}={v:.0f}" for k, v in results.items() if k not in ("province_page_ms", "bare_sql_ms"))
    return (f"db={name} cells={p.cells} members={p.members} province_page_ms={results['province_page_ms']:.0f} "
            f"bare_sql_ms={results['bare_sql_ms']:.0f} ratio={ratio:.2f} {fields}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement, after one warm-up")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://127.0.0.1/test"))
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    lines = [run(kind, args.cells, args.repeat, args.pg_url) for kind in kinds]
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
