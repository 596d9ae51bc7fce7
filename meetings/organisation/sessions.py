"""Login sessions kept on the server, and the one-time join tokens issued from them.

A browser's session cookie carries only a random key; the database keeps its SHA-256, the
account, where and on what device it was opened, when it was last used and, once over, when
and why it ended. Ending a session is a row update, so logout, a password change and an
admin's revoke take effect everywhere at once — on every server process, for every copy of
the cookie (security finding 12.2: a signed cookie used to keep working after logout and
re-signed itself for 7 days on every response). A session also ends when it has been idle
longer than ``idle`` or has lived longer than ``lifetime`` (settings SESSION_IDLE_TIMEOUT and
SESSION_MAX_AGE).

A room join token is good for one WebSocket handshake only: its nonce is recorded here when
used, in the database that every server process shares (finding 12.6).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ForeignKey, Integer, String, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation.base import Base, JSONType, UTCDateTime, rows_changed, utcnow, value_enum

#: A session's last use is written at most this often (not on every request).
TOUCH_INTERVAL = dt.timedelta(seconds=60)
#: Ended sessions are kept this long (the owner's page, an investigation), then deleted at
#: the account's next login.
KEEP_ENDED = dt.timedelta(days=90)
#: Where the web layer puts the request's login session (a :class:`LoginRef`) in the ASGI scope.
SCOPE_KEY = "chibo.login"
#: Where the web layer puts the session cookie's key (a :class:`LoginKey`) for the room's
#: socket, which opens the session itself, in its handshake's one transaction.
KEY_SCOPE_KEY = "chibo.login_key"


class EndReason(enum.StrEnum):
    LOGOUT = "logout"
    ENDED_BY_OWNER = "owner"
    PASSWORD_CHANGED = "password"
    PASSWORD_RESET = "reset"
    REVOKED = "revoked"
    IDLE = "idle"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return {
            "logout": "Đăng xuất", "owner": "Tự kết thúc", "password": "Đổi mật khẩu",
            "reset": "Mật khẩu được cấp lại", "revoked": "Quản trị kết thúc", "idle": "Không hoạt động quá lâu",
            "expired": "Hết thời hạn",
        }[self.value]


class LoginSession(Base):
    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the cookie's key: a copy of the database opens no session.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[EndReason | None] = mapped_column(value_enum(EndReason))
    #: The address and browser it was opened from, and the last address it was used from.
    address: Mapped[str] = mapped_column(String(64), default="")
    last_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    #: What the pages keep between requests: the CSRF token, one-time messages.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class JoinTokenUse(Base):
    """A join token's nonce, recorded when a handshake used it."""

    __tablename__ = "join_token_uses"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(frozen=True)
class SessionLimits:
    idle: dt.timedelta
    lifetime: dt.timedelta


@dataclass(frozen=True)
class LoginRef:
    """The request's login session, as the web layer found it."""

    session_id: int
    account_id: int


@dataclass(frozen=True)
class LoginKey:
    """A session cookie's key as a request brought it, not looked up yet."""

    key: str
    address: str = ""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start(session: Session, account_id: int, *, now: dt.datetime, address: str, user_agent: str) -> tuple[LoginSession, str]:
    """A new session for the account; returns it and the key for the cookie."""
    session.execute(delete(LoginSession).where(LoginSession.account_id == account_id,
                                               LoginSession.ended_at < now - KEEP_ENDED))
    key = secrets.token_urlsafe(32)
    row = LoginSession(key_hash=_hash(key), account_id=account_id, created_at=now, last_seen_at=now,
                       address=address[:64], last_address=address[:64], user_agent=user_agent[:300], data={})
    session.add(row)
    session.flush()
    return row, key


def expiry_reason(row: LoginSession, now: dt.datetime, limits: SessionLimits) -> EndReason | None:
    if now - row.created_at >= limits.lifetime:
        return EndReason.EXPIRED
    if now - row.last_seen_at >= limits.idle:
        return EndReason.IDLE
    return None


def end(row: LoginSession, reason: EndReason, now: dt.datetime) -> None:
    if row.ended_at is None:
        row.ended_at, row.end_reason = now, reason


def find(session: Session, key: str, *, now: dt.datetime, limits: SessionLimits, address: str = "") -> LoginSession | None:
    """The live session a cookie's key opens, used now (its last use is brought up to date);
    None when there is none, it ended, or it just timed out (then it is ended)."""
    if not key or len(key) > 128:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.key_hash == _hash(key)))
    if row is None or row.ended_at is not None:
        return None
    reason = expiry_reason(row, now, limits)
    if reason is not None:
        end(row, reason, now)
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL or (address and address[:64] != row.last_address):
        row.last_seen_at = now
        row.last_address = address[:64]
    return row


def live_ids(session: Session, ids: set[int], *, now: dt.datetime, limits: SessionLimits, touch: bool = False) -> set[int]:
    """Which of these sessions are still live. With ``touch``, their use now counts (an open
    meeting-room WebSocket keeps its session from going idle); timed-out ones are ended."""
    live: set[int] = set()
    ordered = sorted(ids)
    rows = [row for i in range(0, len(ordered), 500)  # a province's open rooms: thousands of ids
            for row in session.scalars(select(LoginSession).where(LoginSession.id.in_(ordered[i:i + 500])))]
    for row in rows:
        if row.ended_at is not None:
            continue
        reason = expiry_reason(row, now, limits)
        if reason is not None:
            end(row, reason, now)
            continue
        if touch and now - row.last_seen_at >= TOUCH_INTERVAL:
            row.last_seen_at = now
        live.add(row.id)
    return live


def end_all(session: Session, account_id: int, reason: EndReason, now: dt.datetime, *, keep: int | None = None) -> int:
    """End every live session of the account (but ``keep``); returns how many ended."""
    stmt = update(LoginSession).where(LoginSession.account_id == account_id, LoginSession.ended_at.is_(None))
    if keep is not None:
        stmt = stmt.where(LoginSession.id != keep)
    return rows_changed(session, stmt.values(ended_at=now, end_reason=reason))


def sessions_of(session: Session, account_id: int, *, now: dt.datetime, limits: SessionLimits) -> list[LoginSession]:
    """The account's live sessions, most recently used first."""
    rows = session.scalars(select(LoginSession).where(LoginSession.account_id == account_id,
                                                      LoginSession.ended_at.is_(None))
                           .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc()))
    live = []
    for row in rows:
        reason = expiry_reason(row, now, limits)
        if reason is None:
            live.append(row)
        else:
            end(row, reason, now)
    return live


def save_data(session: Session, session_id: int, data: dict[str, Any]) -> None:
    session.execute(update(LoginSession).where(LoginSession.id == session_id).values(data=data))


def use_join_nonce(session: Session, nonce: str, *, now: dt.datetime, keep_for: dt.timedelta,
                   prune: bool = True) -> bool:
    """Record a join token's nonce; False when it was used before. With ``prune``, nonces
    older than ``keep_for`` (longer than any token lives) are forgotten first. Plain
    statements, no savepoint: a handshake's part of a province's join rush (bench/join.py)."""
    table = cast(Table, JoinTokenUse.__table__)
    if prune:
        session.execute(delete(table).where(table.c.used_at < now - keep_for))
    values = {"nonce": nonce[:64], "used_at": now}
    # The service runs on these two (app/db.py); both skip a nonce already there.
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(values).on_conflict_do_nothing(index_elements=["nonce"]).returning(table.c.nonce)
    return session.execute(statement).scalar() is not None


def device_label(user_agent: str) -> str:
    """A short Vietnamese description of the browser and system, for the sessions page."""
    ua = user_agent or ""
    system = next((name for key, name in (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
                                          ("Windows", "Windows"), ("Mac OS", "macOS"), ("CrOS", "ChromeOS"),
                                          ("Linux", "Linux")) if key in ua), "")
    browser = next((name for key, name in (("Edg/", "Edge"), ("OPR/", "Opera"), ("CocCoc", "Cốc Cốc"),
                                           ("Zalo", "Zalo"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
                                           ("Chromium/", "Chromium"), ("Safari/", "Safari")) if key in ua), "")
    if not (system or browser):
        return "Thiết bị không rõ"
    return " trên ".join(part for part in (browser or "Trình duyệt", system) if part)
