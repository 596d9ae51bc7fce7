"""Minutes: drafts with autosave conflicts, adoption with both confirmations, immutable
versions (HTTP and database), amendments as new versions, and the exports."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from docx import Document
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from meetings.foundation.actors import Actor
from meetings.foundation.errors import Conflict, ValidationError
from meetings.organisation import accounts
from meetings.organisation.accounts import Role
from meetings.planning.meetings import Meeting, MeetingStatus, change_status
from meetings.proceedings import attendance as att
from meetings.proceedings import minutes as mn
from meetings.proceedings import votes
from meetings.proceedings.attendance import Mark
from meetings.proceedings.minutes_export import header, to_docx
from scripts.render_minutes import render
from tests.support.snapshot import unchanged
from tests.support.web import client_token, login, post
from tests.support.world import add_meetings, add_member
from tests.test_attendance import ACTOR, at, new_cell, open_meeting, present
from tests.test_audit_chain import cli_env, verify_cli

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


class Signers:
    """The chair (Nguyễn Văn Ấn) and the minute-taker (Lê Thị Thu Hà), each with an account."""

    chair: Actor
    taker: Actor
    chair_username: str
    taker_username: str
    draft: dict


@pytest.fixture
def signers():
    return Signers()


@pytest.fixture
def held(session, signers):
    cell = new_cell(session)
    people = [add_member(session, cell, name) for name in ("Nguyễn Văn Ấn", "Lê Thị Thu Hà", "Phạm Thị Hường",
                                                             "Đỗ Văn Vắng")]
    for attr, person in (("chair", people[0]), ("taker", people[1])):
        account = accounts.create_account(session, ACTOR, username=f"{attr}{person.id}", password="mat-khau-dai-12",
                                          display_name=person.full_name, member=person, must_change_password=False)
        accounts.grant_role(session, ACTOR, account, Role.SECRETARY if attr == "chair" else Role.MEMBER, cell)
        setattr(signers, attr, Actor(account.id, person.full_name))
        setattr(signers, f"{attr}_username", account.username)
    signers.draft = {**DRAFT, "chair_member_id": people[0].id, "taker_member_id": people[1].id}
    meeting = open_meeting(session, cell)
    for p in people[:3]:
        present(session, meeting, p)
    att.mark(session, ACTOR, meeting, people[3].id, Mark(status="absent", excused=True, reason_category="illness",
                                                         reason_text="Ốm"), now=at(19, 40))
    motion = votes.open_motion(session, ACTOR, meeting, "Nghị quyết tháng 12", "open", at(21, 0))
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=3, disagree=0, abstain=0)
    votes.close_motion(session, ACTOR, meeting, motion, at(21, 5))
    return meeting


def test_adoption_needs_the_takers_confirmation_of_the_final_text(session, held, signers):
    draft = mn.save_draft(session, signers.taker, held, signers.draft, base_revision=0, now=at(21, 10))
    assert draft.revision == 1
    with unchanged(session), pytest.raises(ValidationError, match="Thư ký chưa xác nhận"):
        mn.adopt(session, signers.chair, held, at(21, 20))
    mn.confirm_as_taker(session, signers.taker, held, at(21, 15))
    mn.save_draft(session, signers.taker, held, {**signers.draft, "other": "Bổ sung sau xác nhận"}, base_revision=1, now=at(21, 16))
    with unchanged(session), pytest.raises(ValidationError, match="xác nhận lại"):
        mn.adopt(session, signers.chair, held, at(21, 20))
    mn.confirm_as_taker(session, signers.taker, held, at(21, 17))
    version = mn.adopt(session, signers.chair, held, at(21, 20))
    assert version.version == 1 and mn.verify(version) and len(version.content_hash) == 64
    content = version.content
    assert content["attendance"]["present"] == 3 and content["attendance"]["absent_excused"] == [["Đỗ Văn Vắng", "Ốm"]]
    assert content["votes"][0]["passed"] is True and content["votes"][0]["denominator"] == 4
    assert content["chair"] == "Nguyễn Văn Ấn" and content["items"][1]["opinions"][0]["speaker"] == "Phạm Thị Hường"


def test_two_editors_do_not_overwrite_each_other(session, held, signers):
    mn.save_draft(session, signers.taker, held, signers.draft, base_revision=0, now=at(21, 10))
    with unchanged(session), pytest.raises(Conflict, match="người khác sửa"):
        mn.save_draft(session, signers.chair, held, {**signers.draft, "resolution": "Khác"}, base_revision=0, now=at(21, 11))
    with unchanged(session), pytest.raises(ValidationError, match="không hợp lệ"):
        mn.save_draft(session, signers.taker, held, {**signers.draft, "items": "không phải danh sách"}, base_revision=1, now=at(21, 12))


def test_adopted_minutes_cannot_change_in_the_database_and_amendments_are_new_versions(database, session, held,
                                                                                     signers):
    mn.save_draft(session, signers.taker, held, signers.draft, base_revision=0, now=at(21, 10))
    mn.confirm_as_taker(session, signers.taker, held, at(21, 15))
    first = mn.adopt(session, signers.chair, held, at(21, 20))
    with unchanged(session), pytest.raises(ValidationError, match="không có gì thay đổi"):
        mn.adopt(session, signers.chair, held, at(21, 20), reason="Không đổi gì")
    change_status(session, ACTOR, held, MeetingStatus.CLOSED, now=at(21, 30))
    session.commit()
    for statement in (f"UPDATE minutes_versions SET content_hash = 'x' WHERE id = {first.id}",
                      f"DELETE FROM minutes_versions WHERE id = {first.id}"):
        with pytest.raises(DatabaseError, match="can no longer change"), database.session() as other:
            other.execute(text(statement))
    fixed = {**signers.draft, "resolution": "Chi bộ thống nhất thông qua nghị quyết tháng 12 (đã sửa lỗi chính tả)."}
    mn.save_draft(session, signers.taker, held, fixed, base_revision=1, now=at(22, 0))
    mn.confirm_as_taker(session, signers.taker, held, at(22, 1))
    with unchanged(session), pytest.raises(ValidationError, match="phải ghi lý do"):
        mn.adopt(session, signers.chair, held, at(22, 2))
    second = mn.adopt(session, signers.chair, held, at(22, 2), reason="Sửa lỗi chính tả ở phần nghị quyết")
    assert second.version == 2 and second.reason.startswith("Sửa lỗi")
    assert [v.version for v in mn.versions(session, held.id)] == [1, 2]
    assert mn.verify(mn.get_version(session, held.id, 1)) and first.content["resolution"] == DRAFT["resolution"]


def test_exports_show_the_party_document_layout_with_vietnamese_text(session, held, signers, tmp_path):
    mn.save_draft(session, signers.taker, held, signers.draft, base_revision=0, now=at(21, 10))
    mn.confirm_as_taker(session, signers.taker, held, at(21, 15))
    version = mn.adopt(session, signers.chair, held, at(21, 20))
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


def test_each_signer_signs_once_from_their_own_account(session, held, signers):
    """Decision 13: the minute-taker confirms, the chair adopts; two members, two accounts."""
    same = {**signers.draft, "taker_member_id": signers.draft["chair_member_id"]}
    mn.save_draft(session, signers.chair, held, same, base_revision=0, now=at(21, 10))
    with unchanged(session), pytest.raises(ValidationError, match="hai đồng chí khác nhau"):
        mn.confirm_as_taker(session, signers.chair, held, at(21, 11))
    mn.save_draft(session, signers.chair, held, signers.draft, base_revision=1, now=at(21, 12))
    for actor in (signers.chair, ACTOR):
        with unchanged(session), pytest.raises(ValidationError, match="Chỉ đồng chí Lê Thị Thu Hà, thư ký cuộc họp"):
            mn.confirm_as_taker(session, actor, held, at(21, 13))
    mn.confirm_as_taker(session, signers.taker, held, at(21, 14))
    for actor in (signers.taker, ACTOR):
        with unchanged(session), pytest.raises(ValidationError, match="Chỉ đồng chí Nguyễn Văn Ấn, người chủ trì"):
            mn.adopt(session, actor, held, at(21, 15))
    version = mn.adopt(session, signers.chair, held, at(21, 15))
    assert (version.taker_confirmed_by_id, version.chair_confirmed_by_id) == (signers.taker.account_id,
                                                                              signers.chair.account_id)
    assert (version.content["taker"], version.content["chair"]) == ("Lê Thị Thu Hà", "Nguyễn Văn Ấn")


def test_the_secretary_cannot_confirm_for_the_minute_taker_through_the_pages(database, world, client_as):
    with database.session() as s:
        add_meetings(s, world, ("A",))
        meeting = s.get(Meeting, world.meetings["A"])
        change_status(s, ACTOR, meeting, MeetingStatus.OPEN, now=meeting.starts_at)
    url = f"/meetings/{world.meetings['A']}/minutes"
    sec, mem = client_as("sec_a"), client_as("mem_a")
    r = sec.post(f"{url}/draft", json={"revision": 0, "data": {
        "chair_member_id": world.id("a1"), "taker_member_id": world.id("a2"), "chair_name": "Nguyễn Văn Ấn",
        "taker_name": "Trần Thị Bích Ngọc", "items": []}},
        headers={"x-csrf-token": client_token(sec)})
    assert r.status_code == 200
    r = post(sec, f"{url}/confirm")
    assert r.status_code == 400 and "Chỉ đồng chí Trần Thị Bích Ngọc, thư ký cuộc họp, xác nhận" in r.text
    assert "Thư ký xác nhận</button>" not in sec.get(url).text  # the button is the minute-taker's
    assert "Thư ký xác nhận</button>" in mem.get(url).text
    assert post(mem, f"{url}/confirm").status_code == 303
    assert post(mem, f"{url}/adopt").status_code == 403
    assert post(sec, f"{url}/adopt").status_code == 303


def tamper_version(database, statement: str, **params) -> None:
    """What someone with database access would do: switch the adopted versions' trigger off."""
    with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE minutes_versions DISABLE TRIGGER minutes_versions_frozen"))
            conn.execute(text(statement), params)
            conn.execute(text("ALTER TABLE minutes_versions ENABLE TRIGGER minutes_versions_frozen"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS minutes_versions_frozen_update"))
            conn.execute(text(statement), params)


def test_every_adopted_field_is_sealed_and_checked_against_the_log(database, session, held, signers, client,
                                                                  backend, postgres_schema, tmp_path):
    mn.save_draft(session, signers.taker, held, signers.draft, base_revision=0, now=at(21, 10))
    mn.confirm_as_taker(session, signers.taker, held, at(21, 15))
    version = mn.adopt(session, signers.chair, held, at(21, 20))
    session.commit()
    login(client, signers.chair_username, "mat-khau-dai-12")
    page = f"/meetings/{held.id}/minutes/v/1"
    env = cli_env(database, backend, postgres_schema, tmp_path)
    assert "có thể đã bị sửa" not in client.get(page).text and verify_cli(env).returncode == 0

    # A raw change of the reason and of the adoption time, the content left alone.
    tamper_version(database, "UPDATE minutes_versions SET reason = 'Sửa lại cho đúng', adopted_at = :t WHERE id = :id",
                   t=at(22, 0).replace(tzinfo=None) if backend == "sqlite" else at(22, 0), id=version.id)
    text_ = client.get(page).text
    assert "có thể đã bị sửa" in text_ and "Trường “lý do sửa đổi” khác với bản đã thông qua." in text_
    assert "Trường “thời điểm thông qua” khác với bản đã thông qua." in text_
    # The content changed together with a freshly computed hash: the log still holds the original.
    with database.session() as s:
        content = dict(s.get(mn.MinutesVersion, version.id).content)
    content["resolution"] = "Chi bộ không thông qua nghị quyết."
    tamper_version(database, "UPDATE minutes_versions SET content = :c, content_hash = :h WHERE id = :id",
                   c=json.dumps(content, ensure_ascii=False), h=mn.content_hash(content), id=version.id)
    text_ = client.get(page).text
    assert "Mã kiểm tra khác với mã được ghi vào nhật ký lúc thông qua" in text_
    result = verify_cli(env)
    assert result.returncode == 1, result.stdout
    assert f"BROKEN minutes: meeting {held.id} version 1: Mã kiểm tra khác với mã được ghi vào nhật ký" in result.stdout
    assert "Audit log intact" in result.stdout  # the log itself was not touched
