"""The demo organisation: Quảng Trị → two communes → four cells, with working accounts."""

import datetime as dt

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.demo import DEMO_ACCOUNTS, load_demo
from meetings.organisation import eligibility
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.planning.meetings import Meeting, MeetingKind, MeetingStatus
from tests.support.web import csrf_of


def test_demo_structure(database):
    today = dt.date(2026, 11, 27)
    with database.session() as s:
        assert load_demo(s, today)
    with database.session() as s:
        assert not load_demo(s, today)  # idempotent
        kinds = dict(s.execute(select(Organisation.kind, func.count()).group_by(Organisation.kind)).all())
        assert kinds == {OrgKind.PROVINCE: 1, OrgKind.COMMUNE: 2, OrgKind.CELL: 4}
        province = s.scalar(select(Organisation).where(Organisation.kind == OrgKind.PROVINCE))
        assert province.name == "Tỉnh ủy Quảng Trị"
        cells = s.scalars(select(Organisation).where(Organisation.kind == OrgKind.CELL)).all()
        totals = {"exempt": 0, "transferred_out": 0, "away": 0, "attached": 0}
        for cell in cells:
            assert s.get(Organisation, cell.parent_id).kind == OrgKind.COMMUNE
            counts = eligibility.electorate(s, cell.id, today).counts()
            assert 8 <= counts["total"] - counts["attached"] <= 25
            for key in totals:
                totals[key] += counts[key]
        assert totals["exempt"] == 1 and totals["transferred_out"] == 1 and totals["attached"] == 1
        assert totals["away"] >= 10


def test_demo_accounts_log_in(app, database):
    with database.session() as s:
        load_demo(s, dt.date(2026, 11, 27))
    for demo in DEMO_ACCOUNTS:
        with TestClient(app, base_url="http://127.0.0.1:8000") as c:
            token = csrf_of(c)
            r = c.post("/login", data={"username": demo.username, "password": demo.password, "csrf_token": token},
                       follow_redirects=True)
            assert r.status_code == 200 and "Xin chào" in r.text, demo.username
            if demo.who in ("secretary", "member", "away member"):
                assert "Chi bộ thôn An Mỹ" in r.text
            if demo.who == "auditor":
                assert "Đảng ủy xã Cam Lộ" in r.text and "Hiếu Giang" not in r.text


@pytest.mark.parametrize("today", [dt.date(2026, 11, 27), dt.date(2027, 3, 2)])
def test_the_demo_leaves_a_meeting_a_newcomer_opens_today(database, today):
    """Issue 13: the README's walk-through starts this month's meeting on its day, whatever
    day the demo is loaded (after the rule's 5th, or before it)."""
    with database.session() as s:
        assert load_demo(s, today)
        cell = s.scalar(select(Organisation).where(Organisation.code == "QT-CL-ANMY"))
        todays = s.scalars(select(Meeting).where(Meeting.cell_id == cell.id, Meeting.kind == MeetingKind.REGULAR,
                                                 Meeting.status == MeetingStatus.SCHEDULED)
                           .order_by(Meeting.starts_at)).first()
        assert todays.local_date == today and todays.remote_open
        assert todays.occurrence_on == today.replace(day=5) and todays.moved_reason
        assert todays.title.startswith("Sinh hoạt thường kỳ") and todays.title.endswith(f"tháng {today.month}/{today.year}")
        held = s.scalars(select(Meeting).where(Meeting.cell_id == cell.id, Meeting.kind == MeetingKind.REGULAR,
                                               Meeting.status == MeetingStatus.CLOSED)).all()
        assert held and all(m.local_date < today.replace(day=1) for m in held)
