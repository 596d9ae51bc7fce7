"""Phone-width screenshots of the main pages look right: login, roster, member, the cell's
schedule, a meeting, the compliance page, a member's yearly record and review, and the
commune's audit."""

import datetime as dt
import os
from pathlib import Path

from sqlalchemy import select

from app.config import Settings
from app.demo import DEMO_PASSWORD, load_demo
from app.factory import create_app
from meetings.evaluation.three_month import MemberFlag
from meetings.organisation.accounts import Account
from meetings.organisation.organisations import Organisation
from meetings.planning.meetings import Meeting
from scripts.screenshots import PHONE, take
from tests.support.live import live_server

ARTIFACTS = Path(os.environ.get("SCREENSHOT_DIR", "var/screenshots"))


def test_phone_screenshots(sqlite_database, tmp_path, clock):
    with sqlite_database.session() as s:
        load_demo(s, dt.date(2026, 11, 27))
        cell = s.scalar(select(Organisation).where(Organisation.code == "QT-CL-ANMY"))
        away = s.scalar(select(Account).where(Account.username == "divang"))
        cell_id, member_id = cell.id, away.member_id
        meeting_id = s.scalar(select(Meeting.id).where(Meeting.cell_id == cell.id, Meeting.remote_open.is_(True))
                              .order_by(Meeting.starts_at))
        flagged = s.scalar(select(MemberFlag.member_id).where(MemberFlag.level == 2, MemberFlag.cell_id == cell.id))
        commune_id = cell.parent_id
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path), SECRET_KEY="k" * 32, LOG_REQUESTS=False,
                                 NOTICE_INTERVAL=0)
    app = create_app(settings, database=sqlite_database, clock=clock)
    with live_server(app) as base:
        shots = take(base, ARTIFACTS, "bithu", DEMO_PASSWORD,
                     [("roster", f"/cells/{cell_id}"), ("member", f"/members/{member_id}"),
                      ("schedule", f"/cells/{cell_id}/schedule"), ("meeting", f"/meetings/{meeting_id}"),
                      ("compliance", f"/cells/{cell_id}/compliance?year=2026"),
                      ("record", f"/members/{flagged}/record?year=2026"),
                      ("review", f"/members/{flagged}/review/2026")])
        shots += [shot for shot in take(base, ARTIFACTS, "kiemtra", DEMO_PASSWORD,
                                        [("audit", f"/orgs/{commune_id}/audit?year=2026")]) if shot.name != "login"]
    by_name = {s.name: s for s in shots}
    assert set(by_name) == {"login", "roster", "member", "schedule", "meeting", "compliance", "record", "review",
                            "audit"}
    for shot in shots:
        assert shot.viewport_width == PHONE["width"]
        assert shot.scroll_width <= PHONE["width"], f"{shot.name} overflows: {shot.scroll_width}px"
        assert Path(shot.path).stat().st_size > 5_000
        assert "\ufffd" not in shot.text  # no replacement characters: diacritics intact
    assert "Đăng nhập" in by_name["login"].text and "Tên đăng nhập" in by_name["login"].text
    roster = by_name["roster"].text
    assert "Chi bộ thôn An Mỹ" in roster and "Đảng số hôm nay" in roster and "Đi làm ăn xa" in roster
    member = by_name["member"].text
    assert "Các giai đoạn" in member and "đang áp dụng" in member
    assert "Sinh hoạt thường kỳ tháng 1/2027" in by_name["schedule"].text
    meeting = by_name["meeting"].text
    assert "Chương trình" in meeting and "Thu đảng phí" in meeting and "Đơn xin vắng (1)" in meeting
    assert "Tham gia trực tuyến" in meeting
    compliance = by_name["compliance"].text
    assert "Nền nếp sinh hoạt năm 2026" in compliance and "Đã họp, thời lượng ngắn" in compliance
    record = by_name["record"].text
    assert "Hồ sơ sinh hoạt năm 2026" in record and "Xem xét xóa tên:" in record
    assert "Vắng không có lý do" in record and "tính vào quy định 3 tháng" in record
    review = by_name["review"].text
    assert "Kiểm điểm, đánh giá, xếp loại năm 2026" in review and "1. Bản tự kiểm điểm" in review
    assert "cần ghi giải trình" in review
    audit = by_name["audit"].text
    assert "Kiểm tra nền nếp sinh hoạt" in audit and "Chi bộ thôn An Mỹ" in audit and "Chi bộ thôn Phú Hậu" in audit
    assert "Hiếu Giang" not in audit and "Tân Định" not in audit  # the other commune's cells
    assert "Sinh hoạt thường kỳ theo tháng" in audit and "Tỷ lệ dự họp theo tháng" in audit
