"""Minutes: drafts with autosave conflicts, adoption with both confirmations, immutable
versions (HTTP and database), amendments as new versions, and the exports."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from docx import Document
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from meetings.foundation.actors import Actor
from meetings.foundation.errors import Conflict, ValidationError
from meetings.planning.meetings import MeetingStatus, change_status
from meetings.proceedings import attendance as att
from meetings.proceedings import minutes as mn
from meetings.proceedings import votes
from meetings.proceedings.attendance import Mark
from meetings.proceedings.minutes_export import header, to_docx
from scripts.render_minutes import render
from tests.support.world import add_member
from tests.test_attendance import ACTOR, at, new_cell, open_meeting, present

TAKER = Actor(None, "Thư ký")

DRAFT = {
    "chair_name": "Nguyễn Văn Ấn",
    "taker_name": "Lê Thị Thu Hà",
    "place": "Nhà văn hóa thôn An Mỹ",
    "guests": "Đồng chí Trần Văn Khách, Đảng ủy viên phụ trách thôn",
    "items": [
        {"title": "Thông tin thời sự, chính trị", "documents": "Nghị quyết số 18-NQ/TW",
         "summary": "Đồng chí bí thư phổ biến tình hình thời sự trong tháng.", "opinions": [],
         "conclusion": ""},
        {"title": "Đánh giá kết quả tháng 11, nhiệm vụ tháng 12", "documents": "",
         "summary": "Chi bộ hoàn thành 5/6 chỉ tiêu.",
         "opinions": [{"speaker": "Phạm Thị Hường", "text": "Đề nghị tổ chức sinh hoạt trực tuyến đều đặn."}],
         "conclusion": "Giao chi ủy xây dựng kế hoạch tháng 12."},
    ],
    "resolution": "Chi bộ thống nhất thông qua nghị quyết tháng 12.",
}


@pytest.fixture
def held(session):
    cell = new_cell(session)
    people = [add_member(session, cell, name) for name in ("Nguyễn Văn Ấn", "Lê Thị Thu Hà", "Phạm Thị Hường",
                                                             "Đỗ Văn Vắng")]
    meeting = open_meeting(session, cell)
    for p in people[:3]:
        present(session, meeting, p)
    att.mark(session, ACTOR, meeting, people[3].id, Mark(status="absent", excused=True, reason_category="illness",
                                                         reason_text="Ốm"), now=at(19, 40))
    motion = votes.open_motion(session, ACTOR, meeting, "Nghị quyết tháng 12", "open", at(21, 0))
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=3, disagree=0, abstain=0)
    votes.close_motion(session, ACTOR, meeting, motion, at(21, 5))
    return meeting


def test_adoption_needs_the_takers_confirmation_of_the_final_text(session, held):
    draft = mn.save_draft(session, TAKER, held, DRAFT, base_revision=0, now=at(21, 10))
    assert draft.revision == 1
    with pytest.raises(ValidationError, match="Thư ký chưa xác nhận"):
        mn.adopt(session, ACTOR, held, at(21, 20))
    mn.confirm_as_taker(session, TAKER, held, at(21, 15))
    mn.save_draft(session, TAKER, held, {**DRAFT, "other": "Bổ sung sau xác nhận"}, base_revision=1, now=at(21, 16))
    with pytest.raises(ValidationError, match="xác nhận lại"):
        mn.adopt(session, ACTOR, held, at(21, 20))
    mn.confirm_as_taker(session, TAKER, held, at(21, 17))
    version = mn.adopt(session, ACTOR, held, at(21, 20))
    assert version.version == 1 and mn.verify(version) and len(version.content_hash) == 64
    content = version.content
    assert content["attendance"]["present"] == 3 and content["attendance"]["absent_excused"] == [["Đỗ Văn Vắng", "Ốm"]]
    assert content["votes"][0]["passed"] is True and content["votes"][0]["denominator"] == 4
    assert content["chair"] == "Nguyễn Văn Ấn" and content["items"][1]["opinions"][0]["speaker"] == "Phạm Thị Hường"


def test_two_editors_do_not_overwrite_each_other(session, held):
    mn.save_draft(session, TAKER, held, DRAFT, base_revision=0, now=at(21, 10))
    with pytest.raises(Conflict, match="người khác sửa"):
        mn.save_draft(session, ACTOR, held, {**DRAFT, "resolution": "Khác"}, base_revision=0, now=at(21, 11))
    with pytest.raises(ValidationError, match="không hợp lệ"):
        mn.save_draft(session, TAKER, held, {**DRAFT, "items": "không phải danh sách"}, base_revision=1, now=at(21, 12))


def test_adopted_minutes_cannot_change_in_the_database_and_amendments_are_new_versions(database, session, held):
    mn.save_draft(session, TAKER, held, DRAFT, base_revision=0, now=at(21, 10))
    mn.confirm_as_taker(session, TAKER, held, at(21, 15))
    first = mn.adopt(session, ACTOR, held, at(21, 20))
    with pytest.raises(ValidationError, match="không có gì thay đổi"):
        mn.adopt(session, ACTOR, held, at(21, 20), reason="Không đổi gì")
    change_status(session, ACTOR, held, MeetingStatus.CLOSED, now=at(21, 30))
    session.commit()
    for statement in (f"UPDATE minutes_versions SET content_hash = 'x' WHERE id = {first.id}",
                      f"DELETE FROM minutes_versions WHERE id = {first.id}"):
        with pytest.raises(DatabaseError, match="can no longer change"), database.session() as other:
            other.execute(text(statement))
    fixed = {**DRAFT, "resolution": "Chi bộ thống nhất thông qua nghị quyết tháng 12 (đã sửa lỗi chính tả)."}
    mn.save_draft(session, TAKER, held, fixed, base_revision=1, now=at(22, 0))
    mn.confirm_as_taker(session, TAKER, held, at(22, 1))
    with pytest.raises(ValidationError, match="phải ghi lý do"):
        mn.adopt(session, ACTOR, held, at(22, 2))
    second = mn.adopt(session, ACTOR, held, at(22, 2), reason="Sửa lỗi chính tả ở phần nghị quyết")
    assert second.version == 2 and second.reason.startswith("Sửa lỗi")
    assert [v.version for v in mn.versions(session, held.id)] == [1, 2]
    assert mn.verify(mn.get_version(session, held.id, 1)) and first.content["resolution"] == DRAFT["resolution"]


def test_exports_show_the_party_document_layout_with_vietnamese_text(session, held, tmp_path):
    mn.save_draft(session, TAKER, held, DRAFT, base_revision=0, now=at(21, 10))
    mn.confirm_as_taker(session, TAKER, held, at(21, 15))
    version = mn.adopt(session, ACTOR, held, at(21, 20))
    head = header(version.content)
    assert head["party"] == "ĐẢNG CỘNG SẢN VIỆT NAM" and head["cell"] == "CHI BỘ CB"
    assert head["subtitle"] == "SINH HOẠT CHI BỘ THƯỜNG KỲ THÁNG 11 NĂM 2026"

    document = Document(__import__("io").BytesIO(to_docx(version)))
    cells = [c.text for c in document.tables[0].rows[0].cells]
    assert "CHI BỘ CB" in cells[0] and "ĐẢNG CỘNG SẢN VIỆT NAM" in cells[1] and "ngày 20 tháng 11 năm 2026" in cells[1]
    text_docx = "\n".join(p.text for p in document.paragraphs)
    assert "BIÊN BẢN" in text_docx and "Vắng mặt có lý do: 1 đồng chí: Đỗ Văn Vắng (Ốm)." in text_docx
    assert "Đồng chí Phạm Thị Hường: Đề nghị tổ chức sinh hoạt trực tuyến đều đặn." in text_docx
    signatures = [c.text for c in document.tables[1].rows[0].cells]
    assert "THƯ KÝ" in signatures[0] and "Lê Thị Thu Hà" in signatures[0] and "CHỦ TRÌ" in signatures[1]

    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftoppm) is not installed")
    files = render(version, tmp_path)
    assert files["page1"].stat().st_size > 10_000
    pdf_text = subprocess.run(["pdftotext", "-layout", str(files["pdf"]), "-"], capture_output=True, text=True,
                              check=True).stdout
    for phrase in ("ĐẢNG CỘNG SẢN VIỆT NAM", "CHI BỘ CB", "BIÊN BẢN", "SINH HOẠT CHI BỘ THƯỜNG KỲ",
                   "Nguyễn Văn Ấn", "Đỗ Văn Vắng", "THÔNG QUA", "THƯ KÝ", "CHỦ TRÌ", version.content_hash):
        assert phrase in pdf_text, phrase
    fonts = subprocess.run(["pdffonts", str(files["pdf"])], capture_output=True, text=True, check=True).stdout
    assert "yes" in fonts.split("\n")[2]  # the font is embedded
