"""The year-end review: who is reviewed (case C7), the self-assessment, the cell's proposal
beside the figures, the committee's decision; bad input refused with nothing stored."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from sqlalchemy import func, select

from meetings.evaluation import reviews
from meetings.evaluation.reviews import Grade, ReviewStatus, YearReview
from meetings.foundation.audit import AuditEntry
from meetings.organisation import members
from meetings.organisation.members import Member, PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation
from tests.support.web import post
from tests.support.world import JPEG, add_member
from tests.support.year import ACTOR, hold

D = dt.date
FORM = {"politics": "Kiên định, giữ gìn đạo đức, lối sống.", "duties": "Hoàn thành nhiệm vụ tổ sản xuất.",
        "pledge": "Thực hiện đúng cam kết đầu năm.", "shortcomings": "Có lúc chưa tham gia đầy đủ.",
        "plans": "Sắp xếp công việc để dự họp đầy đủ."}


def count(database, model):
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def docx_bytes() -> bytes:
    """A minimal .docx, the same bytes on every call (fixed time stamps: a download is compared
    with a second call, which may fall in the next two-second step of the zip's clock)."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr(zipfile.ZipInfo("[Content_Types].xml", date_time=(2026, 1, 1, 0, 0, 0)), "<Types/>")
        z.writestr(zipfile.ZipInfo("word/document.xml", date_time=(2026, 1, 1, 0, 0, 0)), "<w:document/>")
    return data.getvalue()


def test_case_c7_who_is_reviewed(session, world):
    cell = session.get(Organisation, world.id("A"))
    p = add_member(session, cell, "Phan Văn Phúc")
    q = add_member(session, cell, "Quách Thị Quyên", status="dự bị", admitted=D(2026, 8, 15))
    r = add_member(session, cell, "Rơ Châm Rin")
    members.add_period(session, ACTOR, p, PeriodInput(kind=PeriodKind.EXEMPT, start_on="2026-04-01",
                                                      decision_number="11-NQ/CB", reason="Tuổi cao, sức khỏe yếu"))
    members.add_period(session, ACTOR, r, PeriodInput(kind=PeriodKind.SUSPENDED, start_on="2026-10-01",
                                                      decision_number="02-QĐ/ĐU"))
    everyone = list(session.scalars(select(Member).where(Member.home_cell_id == cell.id)))
    result = reviews.eligibilities(session, everyone, 2026)
    assert {m.full_name for m in everyone if not result[m.id].eligible} == {p.full_name, q.full_name, r.full_name}
    assert "miễn sinh hoạt" in result[p.id].reason
    assert "Vào Đảng ngày 15/08/2026, chưa đủ 6 tháng đến ngày kiểm điểm 15/12/2026" in result[q.id].reason
    assert "đình chỉ sinh hoạt" in result[r.id].reason
    assert result[world.id("a3")].eligible  # probationary since 1 June: six months by 15 December
    assert reviews.eligibility(session, session.get(Member, world.id("a2")), 2026).eligible
    # Admitted in June is six months before an early-December review only if the date says so.
    from meetings.evaluation import policies

    policies.set_policy(session, ACTOR, session.get(Organisation, world.id("X")), count_thematic=False,
                        review_date="20/11", basis="Kế hoạch 12-KH/ĐU")
    assert not reviews.eligibility(session, session.get(Member, world.id("a3")), 2026).eligible


def test_excluded_member_cannot_submit_and_is_told_why(world, client_as, database):
    with database.session() as s:
        members.add_period(s, ACTOR, s.get(Member, world.id("a2")),
                           PeriodInput(kind=PeriodKind.EXEMPT, start_on="2026-04-01", decision_number="11-NQ/CB",
                                       reason="Tuổi cao"))
    mem = client_as("mem_a")
    page = mem.get(f"/members/{world.id('a2')}/review/2026").text
    assert "Không thuộc diện kiểm điểm năm 2026:" in page and "Nộp bản tự kiểm điểm" not in page
    r = post(mem, f"/members/{world.id('a2')}/review/2026/self", {**FORM, "self_grade": "httnv"})
    assert r.status_code == 400 and "không thuộc diện kiểm điểm năm 2026" in r.text
    assert count(database, YearReview) == 0


@pytest.mark.parametrize("case", ["empty", "missing_sections", "no_grade", "fake_pdf", "png", "too_big"])
def test_bad_self_assessments_are_refused_and_nothing_is_stored(world, client_as, database, settings, case):
    mem = client_as("mem_a")
    audit_before = count(database, AuditEntry)
    url = f"/members/{world.id('a2')}/review/2026/self"
    files = None
    data: dict[str, str] = {"self_grade": "httnv"}
    expected = {
        "empty": "Hãy điền bản tự kiểm điểm theo các mục hoặc tải lên bản có chữ ký",
        "missing_sections": "Bản tự kiểm điểm còn thiếu: I.2. Về thực hiện chức trách, nhiệm vụ được giao",
        "no_grade": "Hãy chọn mức tự xếp loại",
        "fake_pdf": "không phải PDF, DOCX hoặc JPEG",
        "png": "không phải PDF, DOCX hoặc JPEG",
        "too_big": "quá lớn",
    }[case]
    if case == "missing_sections":
        data.update({"politics": FORM["politics"], "pledge": FORM["pledge"]})
    elif case == "no_grade":
        data = dict(FORM)
    elif case == "fake_pdf":
        files = {"file": ("tu-kiem-diem.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")}
    elif case == "png":
        files = {"file": ("anh.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")}
    elif case == "too_big":
        settings.values["UPLOAD_MAX_BYTES"] = 1000
        files = {"file": ("scan.jpg", JPEG + b"0" * 2000, "image/jpeg")}
    r = post(mem, url, data, files=files)
    assert r.status_code == 400, r.text
    assert expected in r.text
    assert count(database, YearReview) == 0 and count(database, AuditEntry) == audit_before
    assert not (settings.data_dir / "reviews").exists() or not any((settings.data_dir / "reviews").iterdir())


def test_review_end_to_end_with_the_figures_beside_the_grade(world, client_as, database, settings):
    a2 = world.id("a2")
    with database.session() as s:
        cell = s.get(Organisation, world.id("A"))
        for month in (2, 5, 8):
            hold(s, cell, D(2026, month, 5), {a2: "unexcused"})
        hold(s, cell, D(2026, 9, 5), {a2: "online"})
    mem, sec, aud, admin = (client_as(u) for u in ("mem_a", "sec_a", "aud_x", "admin"))
    base = f"/members/{a2}/review/2026"
    # 1. The member writes the self-assessment with the form, then replaces it by the signed file.
    assert post(mem, f"{base}/self", {**FORM, "self_grade": "htxsnv"}).status_code == 303
    page = mem.get(base).text
    assert "Kiên định, giữ gìn đạo đức, lối sống." in page and "Tự nhận mức: <strong>Hoàn thành xuất sắc" in page
    r = post(mem, f"{base}/self", {"self_grade": "httnv"},
             files={"file": ("Bản tự kiểm điểm.docx", docx_bytes(), "application/octet-stream")})
    assert r.status_code == 303
    download = sec.get(f"{base}/file")
    assert download.status_code == 200 and download.content == docx_bytes()
    assert "filename*=UTF-8''B%E1%BA%A3n" in download.headers["content-disposition"]
    # The host organisation's comments, typed in by the home secretary.
    r = post(sec, f"{base}/host-comment", {"host_name": "Chi bộ Công ty Nam Việt", "text": "Hoàn thành tốt công việc."})
    assert r.status_code == 303
    # 2. The cell proposes. "Excellent" with three unexcused months needs a justification.
    r = post(sec, f"{base}/proposal", {"proposed_grade": "htxsnv", "proposal_reason": "Gương mẫu trong sản xuất"})
    assert r.status_code == 400
    assert "chưa phù hợp với số liệu năm 2026: vắng sinh hoạt không lý do 3 tháng (tháng 2, 5, 8)" in r.text
    assert "Cần ghi rõ lý do giải trình" in r.text
    with database.session() as s:
        assert reviews.get_review(s, a2, 2026).status == ReviewStatus.SUBMITTED
    r = post(sec, f"{base}/proposal", {"proposed_grade": "htxsnv", "proposal_reason": "Gương mẫu trong sản xuất",
                                       "proposal_justification": "Ba buổi vắng do đi biển dài ngày, chi bộ đã "
                                                                 "xác minh nhưng chưa kịp ghi lý do"})
    assert r.status_code == 303
    page = aud.get(base).text
    assert "Đề xuất: <strong>Hoàn thành xuất sắc nhiệm vụ (HTXSNV)</strong>" in page
    assert "Giải trình (mức xếp loại chưa phù hợp với số liệu)" in page and "Chi bộ Công ty Nam Việt" in page
    assert "Số liệu khi đề xuất: phải dự 4, có mặt 1 (trực tuyến 1)" in page
    # 3. The committee decides — not the cell's secretary, not a read-only auditor.
    assert post(sec, f"{base}/confirmation", {"confirmed_grade": "htxsnv"}).status_code == 403
    assert post(aud, f"{base}/confirmation", {"confirmed_grade": "htxsnv"}).status_code == 403
    r = post(admin, f"{base}/confirmation", {"confirmed_grade": "htnv"})
    assert r.status_code == 400 and "khác với đề xuất của chi bộ" in r.text
    r = post(admin, f"{base}/confirmation", {"confirmed_grade": "htnv", "confirmation_note": "Vắng nhiều, hạ một mức"})
    assert r.status_code == 303
    with database.session() as s:
        review = reviews.get_review(s, a2, 2026)
        assert (review.status, review.confirmed_grade, review.self_grade) == (ReviewStatus.CONFIRMED, Grade.COMPLETED,
                                                                              Grade.GOOD)
        assert review.proposal_figures["absence_months"] == [2, 5, 8] and review.confirming_org_id == world.id("X")
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("review.%"))
                                 .order_by(AuditEntry.seq)))
    assert actions == ["review.self", "review.self", "review.host_comment", "review.propose", "review.confirm"]
    # Once decided, the self-assessment is closed.
    r = post(mem, f"{base}/self", {**FORM, "self_grade": "htxsnv"})
    assert r.status_code == 400 and "không thay đổi được nữa" in r.text
    # The cell's year-end list shows the decision next to the figures.
    listing = sec.get(f"/cells/{world.id('A')}/records?year=2026").text
    assert "HTNV" in listing and "Xem xét xóa tên: vắng 3 tháng (2, 5, 8)" in listing


def test_member_without_a_flag_may_be_proposed_excellent_without_justification(session, world):
    member = session.get(Member, world.id("a1"))
    hold(session, session.get(Organisation, world.id("A")), D(2026, 3, 5), {})
    reviews.submit_self_assessment(session, ACTOR, member, 2026, form=FORM, self_grade="htxsnv", file=None,
                                   root=None, max_bytes=0, today=D(2026, 11, 27),  # type: ignore[arg-type]
                                   now=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    from meetings.evaluation import records

    record = records.record_of(session, member.id, 2026)
    review = reviews.propose(session, ACTOR, member, 2026, record, grade="htxsnv", reason="Tiêu biểu",
                             justification=None, now=dt.datetime(2026, 12, 10, tzinfo=dt.UTC))
    assert review.proposal_justification is None and review.proposal_figures["expected"] == 1
