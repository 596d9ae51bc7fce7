"""Tables as downloads: CSV (UTF-8 with a BOM, so that Excel reads Vietnamese right) and XLSX.

Every text cell passes through here, because the secretary and the auditor open these files
in a spreadsheet: a member's absence reason like ``=HYPERLINK("http://…"&A1, "Xem")`` must be
shown as text, never run as a formula (CSV injection, OWASP). In CSV a risky text gets a
leading apostrophe (spreadsheets show the rest as text); in XLSX it is written as a string
cell marked "quote prefix", which Excel and LibreOffice never evaluate.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import TypeAlias

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from starlette.responses import Response

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: What makes a spreadsheet read a cell as a formula or a command: = + - @, tab and carriage
#: return (OWASP), also their full-width forms, which some spreadsheets fold to ASCII.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def is_risky(text: str) -> bool:
    """Would a spreadsheet treat this text as the start of a formula?"""
    return text.lstrip(" ").startswith(FORMULA_STARTS)


def neutralise(value: object) -> object:
    """A CSV cell: risky text gets a leading apostrophe; numbers and other text stay as they are."""
    if isinstance(value, str) and is_risky(value):
        return "'" + value
    return value


def csv_text(rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if v is None else neutralise(v) for v in row])
    return "\ufeff" + out.getvalue()


def csv_response(rows: Sequence[Sequence[object]], filename: str) -> Response:
    return Response(csv_text(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


#: What a worksheet cell may hold here (openpyxl takes more; our tables need no more).
XlsxValue: TypeAlias = str | float | dt.datetime | None


def xlsx_response(sheets: Sequence[tuple[str, Sequence[Sequence[XlsxValue]]]], filename: str) -> Response:
    """One worksheet per (title, rows); the first row of each is its header, in bold."""
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for title, rows in sheets:
        sheet = book.create_sheet(title[:31])
        for i, row in enumerate(rows):
            cells = []
            for value in row:
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str) and is_risky(value):
                    # openpyxl would store a text starting with "=" as a formula.
                    cell.data_type = "s"
                    cell.quotePrefix = True
                if i == 0:
                    cell.font = bold
                cells.append(cell)
            sheet.append(cells)
    data = io.BytesIO()
    book.save(data)
    return Response(data.getvalue(), media_type=XLSX_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
