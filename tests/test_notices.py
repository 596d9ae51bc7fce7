"""Notices: who gets them, the join link, and exactly one e-mail per event and member.

Mail goes to a real aiosmtpd server on loopback through the app's SMTP mailer.
"""

import datetime as dt

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from app.mailer import SmtpMailer
from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import members
from meetings.organisation.members import Member, PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation
from meetings.planning import agenda, dates, schedules
from meetings.planning.meetings import Meeting, MeetingKind, PilotApproval
from meetings.planning.notices import EmailStatus, Notice, NoticeOptions, run_due_notices
from tests.support.live import free_port
from tests.support.smtp import Inbox

ACTOR = Actor.system("test")
OPTIONS = NoticeOptions(public_url="https://chibo.example.vn")
EMAILS = {"a1": "an@example.vn", "a2": "ngoc@example.vn", "a3": "dung@example.vn", "a4": "huong@example.vn"}
COMMITTEE = "vp.xuanhoa@example.vn"


def at(*args):
    return dt.datetime(*args, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


class WorkerKilled(BaseException):
    """Stands for the process being stopped while it hands a message over."""


@pytest.fixture
def setup(database, world):
    """Cell A approved for the pilot; a2 exempt in December; a meeting on 5 December, remote open."""
    with database.session() as s:
        for key, address in EMAILS.items():
            s.get(Member, world.id(key)).email = address
        s.get(Organisation, world.id("X")).email = COMMITTEE
        s.add(PilotApproval(cell_id=world.id("A"), decision_number="15-QĐ/ĐU", decided_on=dt.date(2026, 10, 1),
                            approving_org_id=world.id("X"), approving_body="Đảng ủy xã Xuân Hòa",
                            valid_from=dt.date(2026, 10, 1)))
        members.add_period(s, ACTOR, s.get(Member, world.id("a2")),
                           PeriodInput(kind=PeriodKind.EXEMPT, start_on=dt.date(2026, 11, 1), end_on=dt.date(2026, 12, 31),
                                       decision_number="09-NQ/CB", reason="Ốm dài ngày"))
        meeting = schedules.create_adhoc(s, ACTOR, s.get(Organisation, world.id("A")), kind=MeetingKind.REGULAR,
                                         starts_at=at(2026, 12, 5, 19, 30), now=at(2026, 11, 27, 10, 0),
                                         place="Nhà văn hóa thôn An Lạc")
        meeting.remote_open = True
        agenda.items_of(s, meeting.id)[3].in_person_only = True
        return meeting.id


def mailer(smtp):
    return SmtpMailer(smtp.host, smtp.port, sender="Chi bo <no-reply@chibo.example.vn>")


def run(database, now, send, **kw):
    return run_due_notices(database.sessions, now, send, OPTIONS, **kw)


def test_expected_members_and_the_committee_are_told_once_exempt_member_is_not(database, world, setup, smtp, inbox):
    report = run(database, at(2026, 11, 27, 10, 0), mailer(smtp).send)
    assert report.created == 4 and report.sent == 4
    assert inbox.recipients() == sorted([EMAILS["a1"], EMAILS["a3"], EMAILS["a4"], COMMITTEE])
    assert inbox.to(EMAILS["a2"]) == []  # exempt in December: no notice at all
    away = inbox.to(EMAILS["a4"])[0]
    body = away.get_content()
    assert f"https://chibo.example.vn/meetings/{setup}/room" in body
    assert "Đồng chí được tham gia trực tuyến" in body
    assert "Thời gian: 19:30, Thứ Bảy 05/12/2026" in body and "Nhà văn hóa thôn An Lạc" in body
    assert "Thu đảng phí" in body  # the agenda travels with the notice
    assert "Chi bộ thôn An Lạc" in away["Subject"]
    assert "(chỉ thảo luận trực tiếp — người tham gia từ xa không nhận tài liệu của nội dung này)" in body
    in_person = inbox.to(EMAILS["a3"])[0].get_content()
    assert "/room" not in in_person and "(chỉ thảo luận trực tiếp)" in in_person  # no join link
    assert "Kính gửi Đảng ủy xã Xuân Hòa" in inbox.to(COMMITTEE)[0].get_content()
    # In-app notices exist for everyone told, including the exempt member's absence of one.
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.member_id == world.id("a2"))) == 0
    # Running the job again sends nothing new.
    again = run(database, at(2026, 11, 27, 10, 5), mailer(smtp).send)
    assert (again.created, again.sent) == (0, 0) and len(inbox.messages) == 4


def test_restart_mid_send_neither_duplicates_nor_misses(database, world, setup, smtp, inbox):
    real = mailer(smtp)
    now = at(2026, 11, 27, 10, 0)
    # Worker 1 creates the four notices, sends two and stops.
    sent: list[str] = []

    def counting(mail):
        real.send(mail)
        sent.append(mail.to)

    first = run(database, now, counting, should_stop=lambda: len(sent) >= 2)
    assert first.created == 4 and first.sent == 2 and len(inbox.messages) == 2
    # Worker 2 is stopped while handing over its first message (before the server took it).
    def killed(mail):
        raise WorkerKilled()

    with pytest.raises(WorkerKilled):
        run(database, now + dt.timedelta(minutes=1), killed)
    # Worker 3, after the restart, sends the rest: every recipient has exactly one message.
    third = run(database, now + dt.timedelta(minutes=2), real.send)
    assert third.created == 0 and third.sent == 2
    assert inbox.recipients() == sorted([EMAILS["a1"], EMAILS["a3"], EMAILS["a4"], COMMITTEE])
    with database.session() as s:
        statuses = set(s.scalars(select(Notice.email_status)))
    assert statuses == {EmailStatus.SENT}


def test_a_message_the_server_took_before_a_hard_kill_is_never_sent_again(database, setup, smtp, inbox):
    now = at(2026, 11, 27, 10, 0)
    run(database, now, None)  # notices created, e-mail left pending (no SMTP yet)
    # A worker claimed one, the SMTP server accepted it, and the process was killed before
    # it could record "sent".
    with database.session() as s:
        victim = s.scalars(select(Notice).where(Notice.email_status == EmailStatus.PENDING).order_by(Notice.id)).first()
        s.execute(update(Notice).where(Notice.id == victim.id).values(
            email_status=EmailStatus.SENDING, email_claimed_at=now))
        from meetings.planning.notices import OutgoingMail
        mailer(smtp).send(OutgoingMail(victim.email, victim.subject, victim.body, "<x@chibo>", victim.key))
        victim_to = victim.email
    later = run(database, now + dt.timedelta(minutes=30), mailer(smtp).send)
    assert later.uncertain == 1 and later.sent == 3
    assert len(inbox.to(victim_to)) == 1 and len(inbox.messages) == 4


def test_reminders_moves_and_cancellation(database, world, setup, smtp, inbox):
    send = mailer(smtp).send
    run(database, at(2026, 11, 27, 10, 0), send)
    inbox.messages.clear()
    # Three days before: one reminder each (the committee only gets the first notice).
    for minute in (0, 1):
        run(database, at(2026, 12, 2, 19, 30 + minute), send)
    assert inbox.recipients() == sorted([EMAILS["a1"], EMAILS["a3"], EMAILS["a4"]])
    assert all("Nhắc lịch" in m["Subject"] and "Còn 3 ngày nữa" in m.get_content() for m in inbox.messages)
    inbox.messages.clear()
    # Moved, with its reason; then members hear of it once.
    with database.session() as s:
        dates.move_meeting(s, ACTOR, s.get(Meeting, setup), at(2026, 12, 6, 8, 0), "Trùng lịch bầu cử",
                               now=at(2026, 12, 3, 9, 0))
    run(database, at(2026, 12, 3, 9, 1), send)
    run(database, at(2026, 12, 3, 9, 2), send)
    assert len(inbox.messages) == 3
    changed = inbox.to(EMAILS["a1"])[0]
    assert "Thay đổi lịch" in changed["Subject"] and "Lý do thay đổi: Trùng lịch bầu cử" in changed.get_content()
    assert "08:00, Chủ nhật 06/12/2026" in changed.get_content()
    inbox.messages.clear()
    with database.session() as s:
        schedules.cancel_meeting(s, ACTOR, s.get(Meeting, setup), "Bão số 12", now=at(2026, 12, 4, 9, 0))
    run(database, at(2026, 12, 4, 9, 1), send)
    assert len(inbox.messages) == 3
    assert all("Hủy cuộc họp" in m["Subject"] and "Lý do hủy: Bão số 12" in m.get_content() for m in inbox.messages)


def test_meetings_are_announced_within_the_horizon_only(database, world, setup, smtp, inbox):
    with database.session() as s:
        far = schedules.create_adhoc(s, ACTOR, s.get(Organisation, world.id("A")), kind=MeetingKind.EXTRAORDINARY,
                                     starts_at=at(2027, 2, 1, 19, 30), now=at(2026, 11, 27, 10, 0)).id
    run(database, at(2026, 11, 27, 10, 0), mailer(smtp).send)
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.meeting_id == far)) == 0
    run(database, at(2027, 1, 5, 10, 0), mailer(smtp).send)
    with database.session() as s:
        # Four members (a2's exemption ended in December) and the committee.
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.meeting_id == far)) == 5


def test_the_job_started_with_the_app_sends_the_notices(database, world, setup, smtp, inbox, tmp_path, clock):
    """create_app's lifespan runs the job (its first pass at start-up) against the real server."""
    from starlette.testclient import TestClient

    from app.config import Settings
    from app.factory import create_app

    settings = Settings.from_env({}, DATA_DIR=str(tmp_path), SECRET_KEY="k" * 32, LOG_REQUESTS=False,
                                 LOG_LEVEL="WARNING", NOTICE_INTERVAL=3600, SMTP_HOST=smtp.host, SMTP_PORT=smtp.port,
                                 PUBLIC_URL="https://chibo.example.vn")
    app = create_app(settings, database=database, clock=clock)
    with TestClient(app):
        assert app.state.notice_pass.wait(60), "the notice job did not complete a pass"
    assert inbox.recipients() == sorted([EMAILS["a1"], EMAILS["a3"], EMAILS["a4"], COMMITTEE])


def test_chi_uy_meetings_are_notified_to_the_cells_leaders_only(database, world, setup, smtp, inbox):
    with database.session() as s:
        cell = s.get(Organisation, world.id("A"))
        cell.has_committee = True
        schedules.create_adhoc(s, ACTOR, cell, kind=MeetingKind.COMMITTEE, starts_at=at(2026, 12, 2, 19, 30),
                               now=at(2026, 11, 27, 10, 0))
    run(database, at(2026, 11, 27, 10, 0), mailer(smtp).send)
    committee_mail = [m for m in inbox.messages if "Họp chi ủy" in m["Subject"]]
    assert [m["X-Envelope-To"] for m in committee_mail] == [EMAILS["a1"]]  # the secretary


class Refusing(Inbox):
    """An SMTP server that answers 550 to every message while ``refuse`` is set."""

    refuse = True

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        if self.refuse:
            return "550 5.7.1 Message refused by policy"
        return await super().handle_DATA(server, session, envelope)


def statuses(database) -> dict[str, tuple[str, int]]:
    with database.session() as s:
        return {n.email: (n.email_status, n.email_attempts) for n in s.scalars(select(Notice))}


EXPECTED = sorted([EMAILS["a1"], EMAILS["a3"], EMAILS["a4"], COMMITTEE])


def test_smtp_down_keeps_the_notices_and_a_later_run_sends_each_once(database, setup, smtp, inbox):
    now = at(2026, 11, 27, 10, 0)
    down = SmtpMailer("127.0.0.1", free_port(), sender="Chi bo <no-reply@chibo.example.vn>", timeout=5)
    report = run(database, now, down.send)
    assert (report.created, report.sent, report.failed) == (4, 0, 1) and report.errors
    kept = statuses(database)
    assert sorted(kept) == EXPECTED and {status for status, _ in kept.values()} == {EmailStatus.PENDING}
    assert sum(attempts for _, attempts in kept.values()) == 1  # the first try is counted
    with database.session() as s:  # the in-app notices are there whatever the mail does
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.email_error.is_not(None))) == 1
    assert inbox.messages == []
    # The server is back: the next run sends every notice, once.
    later = run(database, now + dt.timedelta(minutes=5), mailer(smtp).send)
    assert (later.created, later.sent, later.failed) == (0, 4, 0)
    assert inbox.recipients() == EXPECTED
    assert {status for status, _ in statuses(database).values()} == {EmailStatus.SENT}
    assert run(database, now + dt.timedelta(minutes=10), mailer(smtp).send).sent == 0
    assert inbox.recipients() == EXPECTED


def test_a_server_answering_550_gets_the_notices_again_later_and_never_twice(database, setup):
    now = at(2026, 11, 27, 10, 0)
    refusing = Refusing()
    controller = Controller(refusing, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        send = SmtpMailer("127.0.0.1", controller.port, sender="Chi bo <no-reply@chibo.example.vn>").send
        for minute in (0, 5):  # two runs refused
            report = run(database, now + dt.timedelta(minutes=minute), send)
            assert (report.sent, report.failed) == (0, 1) and "550" in report.errors[0]
        kept = statuses(database)
        assert sorted(kept) == EXPECTED and {status for status, _ in kept.values()} == {EmailStatus.PENDING}
        assert refusing.messages == []
        with database.session() as s:
            assert "550" in s.scalars(select(Notice.email_error).where(Notice.email_error.is_not(None))).one()
        refusing.refuse = False
        accepted = run(database, now + dt.timedelta(minutes=10), send)
        assert (accepted.sent, accepted.failed) == (4, 0)
        assert refusing.recipients() == EXPECTED  # each once
        assert run(database, now + dt.timedelta(minutes=15), send).sent == 0
        assert refusing.recipients() == EXPECTED
        assert {status for status, _ in statuses(database).values()} == {EmailStatus.SENT}
    finally:
        controller.stop()


class OneMailboxRefused(Inbox):
    """A server that answers 550 to one recipient while ``refused`` names it."""

    refused: str | None = EMAILS["a1"]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]  # noqa: N802
        if address == self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_one_refused_address_holds_up_nobody_else_and_is_retried_later(database, setup):
    now = at(2026, 11, 27, 10, 0)
    server = OneMailboxRefused()
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        send = SmtpMailer("127.0.0.1", controller.port, sender="Chi bo <no-reply@chibo.example.vn>").send
        first = run(database, now, send)
        assert (first.sent, first.failed) == (3, 1) and "550" in first.errors[0]
        assert server.recipients() == sorted([EMAILS["a3"], EMAILS["a4"], COMMITTEE])
        assert statuses(database)[EMAILS["a1"]] == (EmailStatus.PENDING, 1)
        server.refused = None  # the mailbox is fixed
        later = run(database, now + dt.timedelta(minutes=5), send)
        assert (later.sent, later.failed) == (1, 0)
        assert server.recipients() == EXPECTED  # each once
        assert {status for status, _ in statuses(database).values()} == {EmailStatus.SENT}
    finally:
        controller.stop()
