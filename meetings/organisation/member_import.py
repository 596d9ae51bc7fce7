"""CSV import of a cell's members: validate every row first, import all or nothing.

The file is UTF-8 (with or without the BOM Excel writes) with a header row of Vietnamese
column names; see README for the columns. Every bad line is reported with its line number and
reason, and nothing is imported while any line is bad.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..foundation.actors import Actor
from ..foundation.errors import DomainError, ValidationError
from ..foundation.text import fold
from .members import Member, MemberInput, create_member
from .organisations import Organisation, OrgKind

#: Column header (as written in the template) → MemberInput field.
COLUMNS: dict[str, str] = {
    "Họ và tên": "full_name",
    "Ngày sinh": "birth_date",
    "Số thẻ đảng viên": "card_number",
    "Ngày vào Đảng": "admitted_on",
    "Trạng thái": "status",
    "Ngày chính thức": "official_on",
    "Ngày hết dự bị": "probation_ends_on",
    "Điện thoại": "phone",
    "Email": "email",
}
REQUIRED_COLUMNS = ("Họ và tên", "Ngày sinh", "Ngày vào Đảng", "Trạng thái")
_FOLDED = {fold(k): v for k, v in COLUMNS.items()}
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2000


@dataclass
class LineError:
    line: int
    message: str


class ImportFailed(DomainError):
    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"Tệp có {len(errors)} lỗi; chưa nhập đảng viên nào.")
        self.errors = errors


def template_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS.keys())
    writer.writerow(["Nguyễn Văn Hùng", "12/03/1978", "48012345", "19/05/2005", "chính thức", "", "", "0912345678", ""])
    writer.writerow(["Lê Thị Thu Hà", "02/09/1996", "", "03/02/2026", "dự bị", "", "", "0987654321", "ha.le@example.vn"])
    return "\ufeff" + out.getvalue()


def _looks_mojibake(line: str) -> bool:
    """UTF-8 text that was once read as Windows-1252 and saved again ("Nguyá»…n")."""
    if not any(ord(c) > 127 for c in line):
        return False
    try:
        repaired = line.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return repaired != line


NOT_UTF8 = ("Tệp không được lưu bằng mã UTF-8 (có thể là Windows-1258, TCVN3 hay VNI của Excel cũ), nên "
            "không đọc được tên cột và chữ tiếng Việt. Trong Excel, chọn Lưu thành → “CSV UTF-8 (phân cách "
            "bằng dấu phẩy)” rồi gửi lại tệp. Chưa nhập đảng viên nào.")


def _decode(data: bytes) -> tuple[str, list[LineError]]:
    errors: list[LineError] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode Text": UTF-16 with a byte-order mark.
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(NOT_UTF8) from None
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(
                LineError(
                    number,
                    "không đọc được theo mã UTF-8 (có thể dòng này được lưu bằng mã khác như "
                    "Windows-1258, TCVN3). Hãy lưu lại toàn bộ tệp dạng “CSV UTF-8”.",
                )
            )
            continue
        if _looks_mojibake(text):
            errors.append(
                LineError(number, "chữ tiếng Việt bị lỗi mã (ví dụ “Nguyá»…n”); hãy lưu lại tệp dạng “CSV UTF-8”.")
            )
    return data.decode("utf-8", errors="replace"), errors


def parse(data: bytes) -> tuple[list[tuple[int, MemberInput]], list[LineError]]:
    """Read the file into (line number, input) pairs, reporting structural problems."""
    if len(data) > MAX_BYTES:
        raise ValidationError("Tệp quá lớn (tối đa 2 MB).")
    if not data.strip():
        raise ValidationError("Tệp trống.")
    text, errors = _decode(data)
    if any(e.line == 1 for e in errors):
        # The header itself is not UTF-8: the whole file was saved in another encoding, and a
        # list of "missing" columns with garbled names would only mislead.
        raise ValidationError(NOT_UTF8)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError("Tệp trống.") from None
    fields: list[str | None] = [_FOLDED.get(fold(h)) for h in header]
    unknown = [h for h, f in zip(header, fields, strict=True) if f is None and h.strip()]
    missing = [c for c in REQUIRED_COLUMNS if COLUMNS[c] not in fields]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("thiếu cột " + ", ".join(f"“{c}”" for c in missing))
        if unknown:
            parts.append("cột không nhận ra " + ", ".join(f"“{c}”" for c in unknown))
        errors.insert(0, LineError(1, "Dòng tiêu đề: " + "; ".join(parts) + "."))
        return [], errors
    rows: list[tuple[int, MemberInput]] = []
    bad_lines = {e.line for e in errors}
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if line in bad_lines:
            continue
        if len(record) != len(header):
            errors.append(LineError(line, f"có {len(record)} cột, tiêu đề có {len(header)} cột."))
            continue
        values = {f: v for f, v in zip(fields, record, strict=True) if f is not None}
        rows.append((line, MemberInput(**values)))
        if len(rows) > MAX_ROWS:
            raise ValidationError(f"Tệp có quá nhiều dòng (tối đa {MAX_ROWS}).")
    return rows, errors


def validate(session: Session, data: bytes, today: dt.date) -> tuple[list[tuple[int, MemberInput]], list[LineError]]:
    rows, errors = parse(data)
    seen_cards: dict[str, int] = {}
    valid: list[tuple[int, MemberInput]] = []
    for line, row in rows:
        try:
            values = row.validate(today)
        except ValidationError as exc:
            errors.append(LineError(line, exc.message))
            continue
        card = values["card_number"]
        if card is not None:
            if card in seen_cards:
                errors.append(LineError(line, f"số thẻ {card} trùng với dòng {seen_cards[card]}."))
                continue
            seen_cards[card] = line
        valid.append((line, row))
    if seen_cards:
        taken = {card for card in session.scalars(select(Member.card_number).where(Member.card_number.in_(list(seen_cards))))
                 if card is not None}
        for card in sorted(taken, key=lambda c: seen_cards[c]):
            errors.append(LineError(seen_cards[card], f"số thẻ {card} đã thuộc về một đảng viên trong hệ thống."))
    if not rows and not errors:
        errors.append(LineError(2, "tệp không có dòng dữ liệu nào."))
    errors.sort(key=lambda e: e.line)
    return valid, errors


def import_members(session: Session, actor: Actor, cell: Organisation, data: bytes, today: dt.date) -> list[Member]:
    """Import every row or none: raises ImportFailed listing each bad line."""
    if cell.kind != OrgKind.CELL:
        raise ValidationError("Chỉ nhập danh sách đảng viên vào một chi bộ.")
    valid, errors = validate(session, data, today)
    if errors:
        raise ImportFailed(errors)
    return [create_member(session, actor, cell, row, today=today) for _, row in valid]
