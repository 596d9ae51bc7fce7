"""The schedule pages through HTTP: rules, moves, actual times, pilot approval, remote list, agenda."""

import re

import pytest
from sqlalchemy import func, select

from meetings.planning.agenda import AgendaItem
from meetings.planning.meetings import Meeting, PilotApproval
from tests.support.web import post


def meeting_ids(database, cell_id):
    with database.session() as s:
        return list(s.scalars(select(Meeting.id).where(Meeting.cell_id == cell_id).order_by(Meeting.starts_at)))


@pytest.fixture
def scheduled(world, client_as, database):
    sec = client_as("sec_a")
    r = post(sec, f"/cells/{world.id('A')}/rules", {
        "pattern": "monthday", "monthday": "5", "start_time": "19:30", "duration_minutes": "120",
        "place": "Hội trường thôn", "t_mode": "combined", "t_month_of_quarter": "3", "valid_from": "2026-12-01",
    })
    assert r.status_code == 303
    return meeting_ids(database, world.id("A"))


def test_rules_form_generates_the_year(world, client_as, scheduled):
    sec = client_as("sec_a")
    page = sec.get(f"/cells/{world.id('A')}/schedule").text
    assert "Ngày 5 hằng tháng, 19:30" in page and "Kết hợp với sinh hoạt thường kỳ tháng 3, 6, 9, 12" in page
    assert page.count("Sinh hoạt thường kỳ tháng") == 8 and page.count("kết hợp chuyên đề tháng") == 4
    assert len(scheduled) == 12
    form = sec.get(f"/cells/{world.id('A')}/rules").text
    assert 'name="monthday" type="number" min="1" max="31" inputmode="numeric" value="5"' in form
    cell = client_as("mem_a").get(f"/cells/{world.id('A')}").text
    assert "Lịch sinh hoạt" in cell and "Ngày 5 hằng tháng" in cell


def test_bad_rule_form_is_refused_and_nothing_generated(world, client_as, database):
    r = post(client_as("sec_a"), f"/cells/{world.id('A')}/rules", {"pattern": "monthday", "monthday": "40",
                                                                     "start_time": "19:30", "t_mode": "none"})
    assert r.status_code == 400 and "Ngày họp phải từ 1 đến 31." in r.text and 'value="40"' in r.text
    assert meeting_ids(database, world.id("A")) == []


def test_move_needs_a_reason_then_members_see_it(world, client_as, scheduled):
    sec = client_as("sec_a")
    first = scheduled[0]
    r = post(sec, f"/meetings/{first}/move", {"date": "2026-12-06", "time": "08:00", "reason": ""})
    assert r.status_code == 400 and "Dời lịch họp phải ghi rõ lý do" in r.text
    assert "05/12/2026" in client_as("mem_a").get(f"/meetings/{first}").text
    r = post(sec, f"/meetings/{first}/move", {"date": "2026-12-06", "time": "08:00", "reason": "Trùng ngày bầu cử"})
    assert r.status_code == 303
    page = client_as("mem_a").get(f"/meetings/{first}").text
    assert "08:00, Chủ nhật 06/12/2026" in page and "Lịch họp đã thay đổi. Lý do: Trùng ngày bầu cử" in page
    r = post(sec, f"/meetings/{first}/cancel", {"reason": ""})
    assert r.status_code == 400 and "Hủy cuộc họp phải ghi rõ lý do" in r.text
    assert post(sec, f"/meetings/{first}/cancel", {"reason": "Bão"}).status_code == 303
    assert "Cuộc họp đã bị hủy. Lý do: Bão" in client_as("mem_a").get(f"/meetings/{first}").text


def test_actual_times_and_the_90_minute_warning(world, client_as, scheduled, clock):
    sec = client_as("sec_a")
    december, january = scheduled[0], scheduled[1]  # December's is combined with the thematic meeting
    early = post(sec, f"/meetings/{january}/actual", {"date": "2027-01-05", "start": "19:30", "end": "20:45"})
    assert early.status_code == 400 and "không thể ở tương lai" in early.text
    clock.set_local(2027, 1, 5, 21, 0)
    sec = client_as("sec_a")  # weeks later: a new login (sessions end after 4 idle hours)
    r = post(sec, f"/meetings/{january}/actual", {"date": "2027-01-05", "start": "19:30", "end": "20:45"})
    assert r.status_code == 303
    page = sec.get(f"/meetings/{january}").text
    assert "19:30 – 20:45 (75 phút)" in page and "kéo dài 75 phút, dưới 90 phút" in page
    assert post(sec, f"/meetings/{december}/actual", {"date": "2026-12-05", "start": "19:30", "end": "21:10"}
                ).status_code == 303
    assert "kết hợp chuyên đề kéo dài 100 phút, dưới 120 phút" in sec.get(f"/meetings/{december}").text
    backwards = post(sec, f"/meetings/{january}/actual", {"date": "2027-01-05", "start": "20:45", "end": "19:30"})
    assert backwards.status_code == 400 and "Giờ kết thúc phải sau giờ bắt đầu" in backwards.text


def test_pilot_approval_is_recorded_by_the_higher_committee_not_the_secretary(world, client_as, database, scheduled):
    cell = world.id("A")
    sec = client_as("sec_a")
    page = sec.get(f"/cells/{cell}/pilot").text
    assert "1/4 đảng viên" in page and "chưa đủ điều kiện" in page and "Ghi nhận phê duyệt" not in page
    data = {"action": "approve", "decision_number": "15-QĐ/ĐU", "decided_on": "2026-10-01",
            "approving_body": "Đảng ủy xã Xuân Hòa", "valid_from": "2026-10-01"}
    assert post(sec, f"/cells/{cell}/pilot", data).status_code == 403
    # Without approval the secretary cannot open remote participation.
    edit = {"title": "Sinh hoạt thường kỳ tháng 12/2026", "place": "Hội trường", "expected_minutes": "120",
            "remote_open": "on"}
    refused = post(sec, f"/meetings/{scheduled[0]}/edit", edit)
    assert refused.status_code == 400 and "chưa được cấp ủy cấp trên phê duyệt" in refused.text
    admin = client_as("admin")
    bad = post(admin, f"/cells/{cell}/pilot", {**data, "decision_number": ""})
    assert bad.status_code == 400 and "Cần ghi số quyết định phê duyệt." in bad.text
    assert post(admin, f"/cells/{cell}/pilot", data).status_code == 303
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(PilotApproval)) == 1
    assert "Đã được phê duyệt thí điểm" in sec.get(f"/cells/{cell}").text
    assert post(sec, f"/meetings/{scheduled[0]}/edit", edit).status_code == 303
    # Remote participation: the away member by default, others when the secretary adds them.
    meeting = f"/meetings/{scheduled[0]}"
    away_page = client_as("away_a").get(meeting).text
    assert f'href="{meeting}/room">Tham gia trực tuyến' in away_page
    mem_page = client_as("mem_a").get(meeting).text
    assert f'href="{meeting}/room">Tham gia trực tuyến' not in mem_page
    assert "không có trong danh sách tham gia trực tuyến" in mem_page
    assert post(sec, f"{meeting}/remote", {"member_id": str(world.id("a2")), "reason": "Đi công tác"}).status_code == 303
    assert f'href="{meeting}/room">Tham gia trực tuyến' in client_as("mem_a").get(meeting).text
    listed = sec.get(meeting).text
    assert 'Mở cho 2 đảng viên: Phạm Thị Hường <span class="muted small">(đi làm ăn xa)</span>, Trần Thị Bích Ngọc.' in listed


def test_agenda_edit_with_in_person_flag(world, client_as, database, scheduled):
    sec = client_as("sec_a")
    url = f"/meetings/{scheduled[1]}/agenda"
    form = sec.get(url).text
    ids = re.findall(r'name="item_id" value="(\d+)"', form)
    titles = re.findall(r'name="title" value="([^"]*)"', form)
    assert titles[0] == "Thu đảng phí" and len(ids) == len(titles)
    from tests.support.web import client_token

    data = {"csrf_token": client_token(sec), "item_id": [*ids, ""], "title": [*titles, "Xem xét kết nạp đảng viên"],
            "detail": [""] * (len(ids) + 1), "in_person": [f"new{len(ids)}"], "remove": [ids[1]]}
    assert sec.post(url, data=data, follow_redirects=False).status_code == 303
    with database.session() as s:
        items = list(s.scalars(select(AgendaItem).where(AgendaItem.meeting_id == scheduled[1])
                               .order_by(AgendaItem.position)))
    assert len(items) == len(ids) and items[-1].title == "Xem xét kết nạp đảng viên" and items[-1].in_person_only
    assert "chỉ thảo luận trực tiếp" in sec.get(f"/meetings/{scheduled[1]}").text
    empty = sec.post(url, data={"csrf_token": client_token(sec), "item_id": [""], "title": [""]},
                     follow_redirects=False)
    assert empty.status_code == 400 and "ít nhất một nội dung" in empty.text
