"""E-mail over SMTP (smtplib) and the background job that sends meeting notices.

The job is one function call per pass — ``meetings.notices.run_due_notices`` — run by a small
asyncio loop started in ``create_app``'s lifespan. All its state lives in the database, so a
restart simply continues with what is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import smtplib
import threading
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime

import anyio.to_thread

from meetings.planning.notices import (
    NoticeOptions,
    OutgoingMail,
    Refused,
    RunReport,
    parse_offsets,
    run_due_notices,
)

from .config import Settings
from .db import Database

log = logging.getLogger("chibo.mailer")


class SmtpMailer:
    def __init__(self, host: str, port: int, *, sender: str, username: str = "", password: str = "",
                 starttls: bool = False, timeout: float = 30) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer | None:
        if not settings.SMTP_HOST:
            return None
        return cls(settings.SMTP_HOST, settings.SMTP_PORT, sender=settings.MAIL_FROM, username=settings.SMTP_USERNAME,
                   password=settings.SMTP_PASSWORD, starttls=settings.SMTP_STARTTLS)

    def message(self, mail: OutgoingMail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = mail.message_id
        msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(mail.body, charset="utf-8")
        return msg

    def send(self, mail: OutgoingMail) -> None:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            try:
                smtp.send_message(self.message(mail))
            except smtplib.SMTPRecipientsRefused as exc:
                raise Refused(str(exc)) from exc
        except BaseException:
            smtp.close()
            raise
        # Accepted: a failure to say goodbye must not make the job send the message again.
        with contextlib.suppress(Exception):
            smtp.quit()


def notice_options(settings: Settings) -> NoticeOptions:
    return NoticeOptions(
        public_url=settings.PUBLIC_URL,
        reminders=parse_offsets(settings.NOTICE_REMINDERS),
        horizon=dt.timedelta(days=settings.NOTICE_HORIZON_DAYS),
    )


def run_once(db: Database, settings: Settings, now: dt.datetime) -> RunReport:
    mailer = SmtpMailer.from_settings(settings)
    return run_due_notices(db.sessions, now, mailer.send if mailer else None, notice_options(settings))


async def notice_loop(db: Database, settings: Settings, clock: Callable[[], dt.datetime],
                      passed: threading.Event | None = None) -> None:
    """Run the job every NOTICE_INTERVAL seconds until cancelled; ``passed`` is set after each pass."""
    interval = float(settings.NOTICE_INTERVAL)
    while True:
        try:
            report = await anyio.to_thread.run_sync(run_once, db, settings, clock())
            if report.created or report.sent or report.failed:
                log.info("notices", extra={"fields": {"created": report.created, "sent": report.sent,
                                                      "failed": report.failed}})
        except Exception:
            log.exception("notice job failed")
        if passed is not None:
            passed.set()
        await asyncio.sleep(interval)
