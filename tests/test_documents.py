"""Meeting documents: checked by content, warned when late (case C6), opened and logged."""

import datetime as dt
import io
import zipfile

import pytest
from sqlalchemy import func, select

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.foundation.errors import ValidationError
from meetings.organisation.organisations import Organisation
from meetings.planning import agenda, documents, schedules
from meetings.planning.documents import MeetingDocument
from meetings.planning.meetings import Meeting, MeetingKind, PilotApproval
from tests.support.snapshot import unchanged
from tests.support.web import client_token

ACTOR = Actor.system("test")
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def docx_bytes() -> bytes:
    """A minimal .docx, the same bytes on every call (fixed time stamps: a download is compared
    with a second call, which may fall in the next two-second step of the zip's clock)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("[Content_Types].xml", date_time=(2026, 1, 1, 0, 0, 0)), "<Types/>")
        archive.writestr(zipfile.ZipInfo("word/document.xml", date_time=(2026, 1, 1, 0, 0, 0)), "<w:document/>")
    return buffer.getvalue()


def at(*args):
    return dt.datetime(*args, tzinfo=LOCAL_TZ)


@pytest.fixture
def meeting_id(database, world):
    with database.session() as s:
        return schedules.create_adhoc(s, ACTOR, s.get(Organisation, world.id("A")), kind=MeetingKind.REGULAR,
                                      starts_at=at(2026, 12, 5, 19, 30), now=at(2026, 11, 27, 10, 0)).id


def upload(client, meeting_id, name, data, item=""):
    return client.post(f"/meetings/{meeting_id}/documents", files={"file": (name, data)},
                       data={"csrf_token": client_token(client), "agenda_item_id": item}, follow_redirects=False)


def doc_count(database):
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(MeetingDocument))


def test_case_c6_documents_published_12_hours_before_are_flagged(world, client_as, meeting_id, clock, database):
    sec = client_as("sec_a")
    assert upload(sec, meeting_id, "bao-cao-thang-11.pdf", PDF).status_code == 303
    page = sec.get(f"/meetings/{meeting_id}").text
    assert "< 1 ngày" not in page  # published eight days ahead
    clock.set_local(2026, 12, 5, 7, 30)  # 12 hours before 19:30
    sec = client_as("sec_a")  # eight days later: a new login (sessions end after 4 idle hours)
    r = upload(sec, meeting_id, "du-thao-nghi-quyet.pdf", PDF)
    assert r.status_code == 303
    page = sec.get(f"/meetings/{meeting_id}").text
    assert "Tài liệu “du-thao-nghi-quyet.pdf” đăng 12 giờ trước cuộc họp: &lt; 1 ngày" in page
    assert doc_count(database) == 2


def test_type_is_checked_by_content_and_nothing_is_stored_when_wrong(world, client_as, meeting_id, database):
    sec = client_as("sec_a")
    fake = upload(sec, meeting_id, "nghi-quyet.pdf", b"MZ\x90\x00 this is an executable")
    assert fake.status_code == 400 and "không phải PDF, DOCX, PNG hoặc JPEG" in fake.text
    renamed = upload(sec, meeting_id, "anh-chup.pdf", PNG)
    assert renamed.status_code == 400 and "không khớp với nội dung (tệp là PNG)" in renamed.text
    assert doc_count(database) == 0
    assert upload(sec, meeting_id, "Biên bản họp.docx", docx_bytes()).status_code == 303
    assert upload(sec, meeting_id, "anh.png", PNG).status_code == 303
    assert doc_count(database) == 2


def test_size_limit(session, world, meeting_id, tmp_path):
    meeting = session.get(Meeting, meeting_id)
    with unchanged(session), pytest.raises(ValidationError, match="quá lớn"):
        documents.add_document(session, ACTOR, meeting, filename="to.pdf", data=PDF + b"x" * 2000, root=tmp_path,
                               max_bytes=1000, now=at(2026, 11, 27, 10, 0))


def test_openings_are_logged_and_in_person_documents_are_withheld_from_remote_participants(
        world, client_as, meeting_id, database):
    with database.session() as s:
        s.add(PilotApproval(cell_id=world.id("A"), decision_number="15-QĐ/ĐU", decided_on=dt.date(2026, 10, 1),
                            approving_body="Đảng ủy xã Xuân Hòa", valid_from=dt.date(2026, 10, 1)))
        s.get(Meeting, meeting_id).remote_open = True
        item = agenda.items_of(s, meeting_id)[3]
        item.in_person_only = True
        item_id = item.id
    sec = client_as("sec_a")
    assert upload(sec, meeting_id, "nhan-su.pdf", PDF, str(item_id)).status_code == 303
    assert upload(sec, meeting_id, "chung.pdf", PDF).status_code == 303
    with database.session() as s:
        secret, common = (d.id for d in documents.documents_of(s, meeting_id))
    # The away member takes part remotely: the in-person item's document is not theirs.
    away = client_as("away_a")
    page = away.get(f"/meetings/{meeting_id}").text
    assert "chung.pdf" in page and "nhan-su.pdf" not in page
    assert "Người tham gia từ xa không nhận tài liệu của nội dung này" in page
    refused = away.get(f"/documents/{secret}")
    assert refused.status_code == 403 and "chỉ thảo luận trực tiếp" in refused.text
    opened = away.get(f"/documents/{common}")
    assert opened.status_code == 200 and opened.content == PDF and opened.headers["content-type"] == "application/pdf"
    assert client_as("mem_a").get(f"/documents/{secret}").status_code == 200
    page = sec.get(f"/meetings/{meeting_id}").text
    assert "Đã mở: Trần Thị Bích Ngọc" in page and "Đã mở: Phạm Thị Hường" in page


def test_a_document_outlives_the_agenda_item_it_was_attached_to(world, client_as, meeting_id, database):
    with database.session() as s:
        items = agenda.items_of(s, meeting_id)
        item_id = items[0].id
    sec = client_as("sec_a")
    assert upload(sec, meeting_id, "bao-cao.pdf", PDF, item=str(item_id)).status_code == 303
    with database.session() as s:
        meeting = s.get(Meeting, meeting_id)
        rest = [agenda.ItemInput(title=i.title, detail=i.detail, in_person_only=i.in_person_only, item_id=i.id)
                for i in agenda.items_of(s, meeting_id)[1:]]
        agenda.save_items(s, ACTOR, meeting, rest)
    with database.session() as s:
        [doc] = s.scalars(select(MeetingDocument)).all()
        assert doc.agenda_item_id is None and doc.removed_at is None
    assert "bao-cao.pdf" in sec.get(f"/meetings/{meeting_id}").text
