"""CSV import: validate every row, import all or nothing, report each bad line."""

import datetime as dt
import subprocess
import sys
import unicodedata

from sqlalchemy import func, select

from meetings.foundation.actors import Actor
from meetings.organisation import member_import
from meetings.organisation.members import Member
from tests.support.web import client_token

HEADER = "Họ và tên,Ngày sinh,Số thẻ đảng viên,Ngày vào Đảng,Trạng thái,Điện thoại,Email\n"
TODAY = dt.date(2026, 11, 27)


def count(database):
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(Member))


def validate(database, data):
    with database.session() as s:
        return member_import.validate(s, data, TODAY)


def test_good_file_imports_every_row(database, world):
    data = (
        "\ufeff" + HEADER
        + "Hoàng Văn Thụ,12/03/1978,48900001,19/05/2005,chính thức,0912 345 678,\n"
        + "Lê Thị Thu Hà,02/09/1996,,03/02/2026,dự bị,,ha.le@example.vn\n"
        + "Nguyễn Đình Chiểu,1970-01-30,48900002,2000-01-01,Chinh thuc,,\n"
    ).encode()
    with database.session() as s:
        created = member_import.import_members(s, Actor.system("t"), world.orgs["B"], data, TODAY)
    assert [m.full_name for m in created] == ["Hoàng Văn Thụ", "Lê Thị Thu Hà", "Nguyễn Đình Chiểu"]
    assert created[0].phone == "0912345678" and created[1].probation_ends_on == dt.date(2027, 2, 3)


def test_bad_rows_import_nothing_and_every_bad_line_is_reported(database, world):
    taken = world.members["a1"].card_number
    rows = [
        "Trần Văn Một,01/01/1980,48900010,01/01/2005,chính thức,,",  # line 2: fine
        "Trần Văn Hai,01/01/1980,48900010,01/01/2005,chính thức,,",  # line 3: duplicate of line 2
        "Trần Văn Ba,31/02/1980,48900011,01/01/2005,chính thức,,",  # line 4: bad date
        "Trần Văn Bốn,01/01/1980,48900012,01/01/2005,cảm tình,,",  # line 5: unknown status
        f"Trần Văn Năm,01/01/1980,{taken},01/01/2005,chính thức,,",  # line 6: card already used
        "Trần Văn Sáu,01/01/1980,48900013,01/01/2005",  # line 7: missing columns
    ]
    data = (HEADER + "\n".join(rows) + "\n").encode()
    before = count(database)
    valid, errors = validate(database, data)
    by_line = {e.line: e.message for e in errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7]
    assert "trùng với dòng 2" in by_line[3]
    assert "31/02/1980" in by_line[4]
    assert "cảm tình" in by_line[5]
    assert "đã thuộc về một đảng viên" in by_line[6]
    assert "cột" in by_line[7]
    try:
        with database.session() as s:
            member_import.import_members(s, Actor.system("t"), world.orgs["B"], data, TODAY)
        raise AssertionError("import should have failed")
    except member_import.ImportFailed as exc:
        assert len(exc.errors) == 5
    assert count(database) == before


def to_cp1258(text: str) -> bytes:
    """Windows-1258, as old Vietnamese Excel files are: precomposed where it can, else base + tone."""
    out = b""
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            base, *marks = unicodedata.normalize("NFD", char)
            out += unicodedata.normalize("NFC", base + "".join(m for m in marks if m in "\u031b\u0306\u0302")).encode("cp1258")
            out += "".join(m for m in marks if m not in "\u031b\u0306\u0302").encode("cp1258")
    return out


def test_mixed_encodings_are_reported_per_line(database, world):
    good = "Phạm Văn Đồng,01/01/1960,48900020,01/01/1990,chính thức,,\n".encode()
    legacy = to_cp1258("Võ Thị Sáu,01/01/1960,48900021,01/01/1990,chính thức,,\n")
    mojibake = "Nguyễn Huệ,01/01/1960,48900022,01/01/1990,chính thức,,\n".encode().decode("cp1252", "replace").encode()
    data = HEADER.encode() + good + legacy + mojibake
    _, errors = validate(database, data)
    by_line = {e.line: e.message for e in errors}
    assert "UTF-8" in by_line[3]
    assert "lỗi mã" in by_line[4]
    assert 2 not in by_line


def test_header_problems_are_reported(database, world):
    data = "Tên,Ngày sinh\nA,01/01/1990\n".encode()
    _, errors = validate(database, data)
    assert errors[0].line == 1
    assert "Họ và tên" in errors[0].message and "“Tên”" in errors[0].message


def test_upload_through_the_page(world, client_as, database):
    sec = client_as("sec_b")
    token = client_token(sec)
    url = f"/cells/{world.id('B')}/import"
    bad = (HEADER + "Người Sai Ngày,01/13/1990,48900030,01/01/2015,chính thức,,\n").encode()
    before = count(database)
    r = sec.post(url, data={"csrf_token": token}, files={"file": ("ds.csv", bad, "text/csv")}, follow_redirects=False)
    assert r.status_code == 422
    assert "Dòng 2:" in r.text and "01/13/1990" in r.text and "chưa nhập đảng viên nào" in r.text
    assert count(database) == before
    good = (HEADER + "Người Đúng Ngày,13/01/1990,48900031,01/01/2015,chính thức,,\n").encode()
    r = sec.post(url, data={"csrf_token": token}, files={"file": ("ds.csv", good, "text/csv")}, follow_redirects=True)
    assert r.status_code == 200 and "Đã nhập 1 đảng viên" in r.text and "Người Đúng Ngày" in r.text
    template = sec.get(f"{url}/template.csv")
    assert template.headers["content-type"].startswith("text/csv")
    assert template.content.startswith("\ufeffHọ và tên".encode())


def test_import_members_command(tmp_path, backend, database, world, postgres_schema):
    if backend == "sqlite":
        url = str(database.engine.url)
    else:
        url = postgres_schema.plain_url + f"?options=-csearch_path%3D{postgres_schema.schema}"
    path = tmp_path / "ds.csv"
    path.write_bytes((HEADER + "Lý Tự Trọng,20/10/1914,48900040,01/01/1933,chính thức,,\n").encode())
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "app", "import-members", "--cell", "T-B", str(path)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Imported 1 members" in done.stdout
    path.write_bytes((HEADER + "Sai,xx,1,01/01/1931,chính thức,,\n").encode())
    done = subprocess.run([sys.executable, "-m", "app", "import-members", "--cell", "T-B", str(path)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "dòng 2" in done.stderr


def test_a_file_not_in_utf8_gets_one_clear_message_and_nothing_is_imported(world, client_as, database):
    """Saved from old Excel as Windows-1258: one message that says what to do, not a header line
    of "missing columns" with garbled names, nor an error per line."""
    sec = client_as("sec_b")
    token = client_token(sec)
    before = count(database)
    legacy = to_cp1258(HEADER + "Võ Thị Sáu,01/01/1960,48900041,01/01/1990,chính thức,,\n"
                       + "Lê Văn Tám,01/01/1961,48900042,01/01/1991,chính thức,,\n")
    r = sec.post(f"/cells/{world.id('B')}/import", data={"csrf_token": token},
                 files={"file": ("ds.csv", legacy, "text/csv")}, follow_redirects=False)
    assert r.status_code == 400
    assert "không được lưu bằng mã UTF-8" in r.text and "CSV UTF-8" in r.text
    assert "thiếu cột" not in r.text and "\ufffd" not in r.text and "Dòng 1:" not in r.text
    assert count(database) == before


def test_a_utf16_file_from_excel_is_read(database, world):
    """Excel's "Unicode Text" is UTF-16 with a byte-order mark, tab-separated."""
    text = (HEADER + "Võ Thị Sáu,01/01/1960,48900051,01/01/1990,chính thức,,\n").replace(",", "\t")
    valid, errors = validate(database, text.encode("utf-16"))
    assert errors == [] and [row.full_name for _, row in valid] == ["Võ Thị Sáu"]
