"""The higher committees' audit: regular meetings on time / late / missing, thematic quarters,
minutes, attendance, away members online, flags; totals per level; drill-down; exports;
and an auditor of one commune seeing nothing of another."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from meetings.evaluation import regularity
from meetings.evaluation.regularity import Regular
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import MeetingKind
from tests.support.year import hold

D = dt.date
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=LOCAL_TZ)


@pytest.fixture
def year_of_meetings(database, world):
    """Cell A: January on time (minutes at the meeting), February late (minutes 3 days on),
    no March, April combined but short, May with two unexcused absences; cell B: every
    month of Q1 and a thematic meeting in February; cell C (another commune): January."""
    a2, a4, b3 = world.id("a2"), world.id("a4"), world.id("b3")
    ids = {}
    with database.session() as s:
        a, b, c = (s.get(Organisation, world.id(k)) for k in "ABC")
        ids["jan"] = hold(s, a, D(2026, 1, 5), {}, planned=D(2026, 1, 5), adopt_after=dt.timedelta(minutes=5)).id
        hold(s, a, D(2026, 2, 20), {}, planned=D(2026, 2, 5), adopt_after=dt.timedelta(days=3))
        hold(s, a, D(2026, 4, 5), {a4: "online", a2: "unexcused"}, planned=D(2026, 4, 5), combined=True,
             minutes_long=100)
        hold(s, a, D(2026, 5, 12), {a4: "unexcused", a2: "unexcused"}, planned=D(2026, 5, 5))
        for month in (1, 2, 3):
            hold(s, b, D(2026, month, 5), {b3: "excused"} if month == 2 else {}, planned=D(2026, month, 5))
        hold(s, b, D(2026, 2, 20), {}, kind=MeetingKind.THEMATIC)
        hold(s, c, D(2026, 1, 5), {})
    return ids


def test_quarter_audit_of_a_commune(database, world, year_of_meetings):
    with database.session() as s:
        result = regularity.audit(s, s.get(Organisation, world.id("X")), 2026, 1, NOW)
    by_name = {c.name: c for c in result.cells}
    assert set(by_name) == {"Chi bộ thôn An Lạc", "Chi bộ thôn Bắc Sơn"}  # not C, of another commune
    a, b = by_name["Chi bộ thôn An Lạc"], by_name["Chi bộ thôn Bắc Sơn"]
    assert [m.status for m in a.months] == [Regular.ON_TIME, Regular.LATE, Regular.MISSING]
    assert a.months[1].late_days == 15
    assert [m.status for m in b.months] == [Regular.ON_TIME] * 3
    t = result.total
    assert (t.cells, t.months_due, t.on_time, t.late, t.missing) == (2, 6, 4, 1, 1)
    assert (t.quarters_due, t.thematic_held, t.thematic_missing) == (2, 1, 1)
    # Minutes: A's January at the meeting, February three days later; B's none.
    assert (a.tally.held, a.tally.minutes_adopted, a.tally.minutes_days) == (2, 2, 3)
    assert (b.tally.held, b.tally.minutes_adopted) == (4, 0)
    # Attendance from the rosters: A 3 + 3 expected (a3 joined in June), B 4 meetings × 3.
    assert (t.expected, t.present) == (18, 17) and t.attendance_rate == pytest.approx(17 / 18)
    assert [(m.month, m.expected, m.present) for m in result.trend] == [(1, 6, 6), (2, 9, 8), (3, 3, 3)]
    # Totals per level: one row per child (here the cells), summing to the whole.
    assert [(c.name, tally.on_time) for c, tally in result.children] == [("Chi bộ thôn An Lạc", 1),
                                                                        ("Chi bộ thôn Bắc Sơn", 3)]


def test_second_quarter_short_combined_meeting_away_online_and_flags(database, world, year_of_meetings):
    with database.session() as s:
        result = regularity.audit(s, s.get(Organisation, world.id("X")), 2026, 2, NOW)
    a = next(c for c in result.cells if c.name == "Chi bộ thôn An Lạc")
    assert [m.status for m in a.months] == [Regular.ON_TIME, Regular.ON_TIME, Regular.MISSING]
    assert a.tally.too_short == 1 and a.tally.thematic_held == 1  # combined in April, under 120 minutes
    assert a.months[1].late_days is None  # 7 days after the planned day is still on time
    # a4 is away from March: online in April, absent in May.
    assert (a.tally.away_members, a.tally.away_expected, a.tally.away_online) == (1, 2, 1)
    # a2: unexcused in April and May → a warning, counted for the cell.
    assert (a.tally.warnings, a.tally.removal_reviews) == (1, 0)


def test_late_means_more_than_seven_days_after_the_planned_day(database, world):
    with database.session() as s:
        a = s.get(Organisation, world.id("A"))
        hold(s, a, D(2026, 7, 12), {}, planned=D(2026, 7, 5))
        hold(s, a, D(2026, 8, 13), {}, planned=D(2026, 8, 5))
        hold(s, a, D(2026, 9, 25), {})  # added by hand: no planned day, on time in its month
        result = regularity.audit(s, a, 2026, 3, NOW)
    assert [(m.status, m.late_days) for m in result.cells[0].months] == [
        (Regular.ON_TIME, None), (Regular.LATE, 8), (Regular.ON_TIME, None)]


def test_province_totals_per_commune(database, world, year_of_meetings):
    with database.session() as s:
        result = regularity.audit(s, s.get(Organisation, world.id("P")), 2026, 1, NOW)
    totals = {c.name: (t.cells, t.on_time, t.late, t.missing) for c, t in result.children}
    assert totals == {"Đảng ủy xã Xuân Hòa": (2, 4, 1, 1), "Đảng ủy xã Yên Bình": (1, 1, 0, 2)}
    assert (result.total.cells, result.total.on_time) == (3, 5)


def test_audit_pages_drill_down_from_the_commune_to_the_roster(world, client_as, year_of_meetings):
    aud = client_as("aud_x")
    page = aud.get(f"/orgs/{world.id('X')}/audit?year=2026&quarter=1")
    assert page.status_code == 200
    text = page.text
    assert "Kiểm tra nền nếp sinh hoạt" in text and "quý 1/2026" in text
    assert "Chi bộ thôn An Lạc" in text and "Chi bộ thôn Bắc Sơn" in text and "Cẩm Thủy" not in text
    assert text.count('<svg class="chart') == 2 and "An Lạc, tháng 2: Muộn (15 ngày sau ngày dự kiến)" in text
    assert f'href="/cells/{world.id("A")}/audit?year=2026&quarter=1"' in text
    cell = aud.get(f"/cells/{world.id('A')}/audit?year=2026&quarter=1").text
    assert "muộn 15 ngày" in cell and "Biên bản thông qua ngay tại buổi họp" in cell and "sau 3 ngày" in cell
    roster_link = f"/meetings/{year_of_meetings['jan']}/attendance"
    assert roster_link in cell
    roster = aud.get(roster_link)
    assert roster.status_code == 200 and "Trần Thị Bích Ngọc" in roster.text
    assert aud.get(f"/orgs/{world.id('X')}/audit?quarter=5").status_code == 400


def test_auditor_of_one_commune_sees_nothing_of_another(world, client_as, year_of_meetings):
    aud = client_as("aud_x")
    y, c, p = world.id("Y"), world.id("C"), world.id("P")
    for url in (f"/orgs/{y}/audit", f"/orgs/{p}/audit", f"/orgs/{y}/audit.csv", f"/orgs/{y}/audit.xlsx",
                f"/orgs/{p}/audit.csv", f"/orgs/{y}/records", f"/orgs/{y}/log", f"/cells/{c}/audit",
                f"/cells/{c}/records", f"/members/{world.id('c1')}/record",
                f"/members/{world.id('c1')}/review/2026", f"/orgs/{c}/audit.csv"):
        assert aud.get(url).status_code == 404, url
    exported = aud.get(f"/orgs/{world.id('X')}/audit.csv?year=2026&quarter=1")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:6] == ["Cấp ủy trực thuộc", "Mã chi bộ", "Chi bộ", "Tháng 1", "Tháng 2", "Tháng 3"]
    assert sorted(r[1] for r in rows[1:]) == ["T-A", "T-B"]
    a_row = next(r for r in rows if r[1] == "T-A")
    assert a_row[3:6] == ["Đúng hạn", "Muộn", "Thiếu"]
    book = load_workbook(io.BytesIO(aud.get(f"/orgs/{world.id('X')}/audit.xlsx?year=2026&quarter=1").content))
    assert book.sheetnames == ["Tổng hợp", "Chi bộ"]
    cells = [row for row in book["Chi bộ"].iter_rows(values_only=True)]
    assert sorted(r[1] for r in cells[1:]) == ["T-A", "T-B"]
    summary = list(book["Tổng hợp"].iter_rows(values_only=True))
    assert summary[1][:5] == ("Đảng ủy xã Xuân Hòa", 2, 4, 1, 1)
    # The commune's year-end list names its members, not the other commune's.
    listing = aud.get(f"/orgs/{world.id('X')}/records?year=2026").text
    assert "Trần Thị Bích Ngọc" in listing and "Ngô Quang Cường" not in listing


def test_admin_sets_the_policy_and_bad_input_is_refused(world, client_as, database, year_of_meetings):
    from sqlalchemy import func, select

    from meetings.evaluation.policies import EvaluationPolicy
    from tests.support.web import post

    admin = client_as("admin")
    url = f"/orgs/{world.id('X')}/evaluation-policy"
    r = post(admin, url, {"count_thematic": "1", "review_date": "31/02", "basis": "Hướng dẫn 05"})
    assert r.status_code == 400 and "Ngày kiểm điểm cuối năm phải có dạng ngày/tháng" in r.text
    r = post(admin, url, {"count_thematic": "1", "review_date": "10/12", "basis": ""})
    assert r.status_code == 400 and "Hãy ghi căn cứ" in r.text
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(EvaluationPolicy)) == 0
    assert post(admin, url, {"count_thematic": "1", "review_date": "10/12", "basis": "Hướng dẫn 05-HD/ĐU"}
                ).status_code == 303
    page = client_as("aud_x").get(f"/orgs/{world.id('X')}/audit").text
    assert "thường kỳ và chuyên đề" in page and "10/12" in page and "Hướng dẫn 05-HD/ĐU" in page
    assert post(client_as("sec_a"), url, {"count_thematic": "1", "basis": "x"}).status_code == 404


def test_cells_summed_by_the_database_match_the_month_by_month_audit(database, world, year_of_meetings):
    """A province's cells that stood under one commune all year are summed by the database and
    kept as its rows until a page asks for them: made into cells, they are the cells the
    month-by-month audit finds, and the cells needing attention rank the same."""
    with database.session() as s:
        province = s.get(Organisation, world.id("P"))
        summed = regularity.audit(s, province, 2026, None, NOW)
        detailed = regularity.audit(s, province, 2026, None, NOW, detail_all=True)
    assert summed.fast_rows and not detailed.fast_rows
    attention = [c.name for c in regularity.cells_with_gaps(summed)]
    assert attention == [c.name for c in regularity.cells_with_gaps(detailed)]
    assert attention[0] == "Chi bộ thôn Cẩm Thủy"  # one meeting in the year: the most months missing
    assert summed.cell(world.id("C")).tally == detailed.cell(world.id("C")).tally
    assert [(c.name, c.child_id, c.tally) for c in summed.cells] == \
        [(c.name, c.child_id, c.tally) for c in detailed.cells]
    assert summed.total == detailed.total
