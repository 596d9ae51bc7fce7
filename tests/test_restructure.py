"""History after a restructure (issue 13, finding 10; decision 11): cell A moves from commune X
to commune Y on 1 July 2026. Each commune's audit, export and auditor keep the months and
meetings of its own time; the province counts the cell once, under each commune for its part.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from meetings.evaluation import regularity
from meetings.evaluation.regularity import Regular
from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import accounts, organisations
from meetings.organisation.accounts import Role
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import MeetingKind, MeetingStatus, change_status, create_meeting
from meetings.proceedings.minutes_export import header
from tests.support.world import PASSWORD, adopt_minutes
from tests.support.year import hold

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=LOCAL_TZ)
ACTOR = Actor.system("test")
BEFORE, AFTER = [Regular.ON_TIME] * 6, [Regular.ON_TIME] * 5 + [Regular.NOT_DUE]


@pytest.fixture
def moved(database, world):
    """A's meetings on the 5th of January–November; the cell moved from X to Y on 1 July."""
    ids = {}
    with database.session() as s:
        a = s.get(Organisation, world.id("A"))
        for month in range(1, 7):
            ids[month] = hold(s, a, dt.date(2026, month, 5), {}, planned=dt.date(2026, month, 5)).id
        organisations.move_organisation(s, ACTOR, a, s.get(Organisation, world.id("Y")), dt.date(2026, 7, 1))
        for month in range(7, 12):
            ids[month] = hold(s, a, dt.date(2026, month, 5), {}, planned=dt.date(2026, month, 5)).id
        auditor = accounts.create_account(s, ACTOR, username="aud_y", password=PASSWORD, display_name="Kiểm tra Y",
                                          member=None, must_change_password=False)
        accounts.grant_role(s, ACTOR, auditor, Role.AUDITOR, s.get(Organisation, world.id("Y")))
    return ids


def statuses(result, cell_id):  # type: ignore[no-untyped-def]
    return [m.status for m in next(c for c in result.cells if c.id == cell_id).months]


def test_each_commune_audits_the_cell_for_its_own_months(database, world, moved):
    a = world.id("A")
    with database.session() as s:
        x = regularity.audit(s, s.get(Organisation, world.id("X")), 2026, None, NOW)
        y = regularity.audit(s, s.get(Organisation, world.id("Y")), 2026, None, NOW)
        p = regularity.audit(s, s.get(Organisation, world.id("P")), 2026, None, NOW)
    assert statuses(x, a) == BEFORE + [Regular.OUTSIDE] * 6
    assert statuses(y, a) == [Regular.OUTSIDE] * 6 + AFTER
    assert statuses(p, a) == BEFORE + AFTER  # the province had it all year
    cell_x = next(c for c in x.cells if c.id == a)
    assert (cell_x.tally.months_due, cell_x.tally.on_time, cell_x.tally.held) == (6, 6, 6)
    assert (x.total.cells, x.total.on_time, x.total.missing) == (2, 6, 11)  # A's half year, B nothing
    assert (y.total.cells, y.total.on_time, y.total.missing) == (2, 5, 11)  # A's part, C nothing
    # The province: the cell under X until June and under Y from July, counted once in all.
    children = {org.name: (t.cells, t.on_time, t.missing, t.held) for org, t in p.children}
    assert children == {"Đảng ủy xã Xuân Hòa": (2, 6, 11, 6), "Đảng ủy xã Yên Bình": (2, 5, 11, 5)}
    assert (p.total.cells, p.total.on_time, p.total.missing, p.total.held) == (3, 11, 22, 11)
    assert [m.child_id for m in next(c for c in p.cells if c.id == a).months[5:7]] == [world.id("X"), world.id("Y")]


def test_exports_and_auditors_follow_the_organisation_of_the_time(world, client_as, moved):
    a, x, y, p = world.id("A"), world.id("X"), world.id("Y"), world.id("P")
    aud_x, aud_y = client_as("aud_x"), client_as("aud_y")

    def row_of_a(client, org):  # type: ignore[no-untyped-def]
        text = client.get(f"/orgs/{org}/audit.csv?year=2026").content.decode("utf-8-sig")
        return next(r for r in csv.reader(io.StringIO(text)) if r[1] == "T-A")

    assert row_of_a(aud_x, x)[3:15] == ["Đúng hạn"] * 6 + ["—"] * 6
    assert row_of_a(aud_y, y)[3:15] == ["—"] * 6 + ["Đúng hạn"] * 5 + ["Chưa đến hạn"]
    admin = client_as("admin")
    province = row_of_a(admin, p)
    assert province[0] == "Đảng ủy xã Xuân Hòa (01/01–30/06) → Đảng ủy xã Yên Bình (01/07–31/12)"
    assert province[3:15] == ["Đúng hạn"] * 11 + ["Chưa đến hạn"]
    book = load_workbook(io.BytesIO(admin.get(f"/orgs/{p}/audit.xlsx?year=2026").content))
    summary = {row[0]: row[1:5] for row in book["Tổng hợp"].iter_rows(values_only=True)}
    assert summary["Tỉnh ủy Thử Nghiệm"] == (3, 11, 0, 22)
    assert summary["Đảng ủy xã Xuân Hòa"] == (2, 6, 0, 11) and summary["Đảng ủy xã Yên Bình"] == (2, 5, 0, 11)

    # The old commune's auditor keeps the cell's first half year; the new one gets the second.
    for month, (old, new) in {3: (200, 404), 6: (200, 404), 7: (404, 200), 10: (404, 200)}.items():
        for path in (f"/meetings/{moved[month]}", f"/meetings/{moved[month]}/attendance",
                     f"/meetings/{moved[month]}/minutes"):
            assert (aud_x.get(path).status_code, aud_y.get(path).status_code) == (old, new), (month, path)
    page = aud_x.get(f"/orgs/{x}/audit?year=2026").text
    assert f'href="/cells/{a}/audit?year=2026&amp;via={x}"' in page or f"/cells/{a}/audit?year=2026&via={x}" in page
    from_x = aud_x.get(f"/cells/{a}/audit?year=2026&via={x}")
    assert from_x.status_code == 200 and "thuộc Đảng ủy xã Xuân Hòa: 01/01/2026–30/06/2026" in from_x.text
    assert f"/meetings/{moved[3]}/attendance" in from_x.text and f"/meetings/{moved[9]}" not in from_x.text
    assert aud_x.get(f"/cells/{a}/audit?year=2026").status_code == 404  # not X's cell today
    assert aud_x.get(f"/cells/{a}/audit?year=2027&via={x}").status_code == 404  # nothing of X's in 2027
    from_y = aud_y.get(f"/cells/{a}/audit?year=2026")
    assert from_y.status_code == 200 and "thuộc Đảng ủy xã Yên Bình: 01/07/2026–31/12/2026" in from_y.text
    assert f"/meetings/{moved[9]}/attendance" in from_y.text and f"/meetings/{moved[3]}" not in from_y.text
    # The cell's own secretary reads its whole history.
    secretary = client_as("sec_a")
    assert all(secretary.get(f"/meetings/{moved[m]}").status_code == 200 for m in (3, 9))


def test_minutes_are_headed_by_the_committee_of_the_meetings_day(database, world):
    """A meeting scheduled before the move and held after it: its minutes name the new commune."""
    with database.session() as s:
        a = s.get(Organisation, world.id("A"))
        august = create_meeting(s, ACTOR, a, kind=MeetingKind.REGULAR,
                                starts_at=dt.datetime(2026, 8, 5, 19, 30, tzinfo=LOCAL_TZ))
        assert august.supervisor_id == world.id("X")  # as scheduled, in spring
        organisations.move_organisation(s, ACTOR, a, s.get(Organisation, world.id("Y")), dt.date(2026, 7, 1))
        change_status(s, ACTOR, august, MeetingStatus.OPEN, now=august.starts_at)
        change_status(s, ACTOR, august, MeetingStatus.CLOSED, now=august.starts_at + dt.timedelta(minutes=100))
        version = adopt_minutes(s, august, august.starts_at + dt.timedelta(minutes=105))
    head = header(version.content)
    assert head["superior"] == "ĐẢNG BỘ XÃ YÊN BÌNH" and head["date_line"].startswith("Yên Bình, ngày 05 tháng 08")
    assert version.content["organisation"]["lineage"] == ["Tỉnh ủy Thử Nghiệm", "Đảng ủy xã Yên Bình"]


def test_the_audits_cells_and_spans_are_those_of_the_dated_links(database, world, moved):
    """The audit reads its cells and their spans from one recursive query
    (``organisations.cells_during_statement``): the same as the walk of ``descendants_during``,
    for the province, both communes and periods before, across and after the move."""
    with database.session() as s:
        for code in ("P", "X", "Y"):
            org = s.get(Organisation, world.id(code))
            for quarter in (None, 2, 3):
                expected = regularity.cells_of_period(s, org, 2026, quarter)
                plan = regularity.plan(s, org, 2026, quarter)
                assert plan.spans_of == expected, (code, quarter)
                paths = {i: s.get(Organisation, i).path for i in expected}
                assert [c[0] for c in plan.cells] == sorted(expected, key=paths.__getitem__)
