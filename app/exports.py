"""Tables as downloads: CSV (UTF-8 with a BOM, so that Excel reads Vietnamese right) and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from starlette.responses import Response

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_response(rows: Sequence[Sequence[object]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def xlsx_response(sheets: Sequence[tuple[str, Sequence[Sequence[object]]]], filename: str) -> Response:
    """One worksheet per (title, rows); the first row of each is its header, in bold."""

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for title, rows in sheets:
        sheet = book.create_sheet(title[:31])
        for i, row in enumerate(rows):
            if i == 0:
                cells = []
                for value in row:
                    cell = WriteOnlyCell(sheet, value=value)
                    cell.font = bold
                    cells.append(cell)
                sheet.append(cells)
            else:
                sheet.append(list(row))
    data = io.BytesIO()
    book.save(data)
    return Response(data.getvalue(), media_type=XLSX_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
