"""Accounts, roles granted on organisations, passwords and login throttling.

Passwords are stored only as Argon2id hashes (argon2-cffi's defaults, RFC 9106). Failed logins
are kept in the database, so throttling holds across server processes and restarts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from ..foundation.text import clean_text
from . import sessions
from .members import Member
from .organisations import Organisation


class Role(enum.StrEnum):
    MEMBER = "member"
    SECRETARY = "secretary"
    DEPUTY = "deputy"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.MEMBER: "Đảng viên",
    Role.SECRETARY: "Bí thư chi bộ",
    Role.DEPUTY: "Phó bí thư chi bộ",
    Role.AUDITOR: "Cấp ủy cấp trên (kiểm tra, giám sát)",
    Role.ADMIN: "Quản trị",
}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), unique=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Counts password changes and resets. Sessions themselves live in meetings/sessions.py
    #: (server-side since migration 0007); this no longer decides whether a cookie works.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RoleGrant(Base):
    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("account_id", "organisation_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: None only for a platform-wide admin.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[Role] = mapped_column(
        value_enum(Role)
    )
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginFailure(Base):
    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)


# --------------------------------------------------------------------------- passwords

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


def configure_hashing(*, time_cost: int, memory_cost: int) -> None:
    """Change the Argon2id cost parameters (the test suite lowers them to stay fast).

    Existing hashes keep verifying: the parameters are stored in each hash, and a login
    rehashes a password whose parameters differ from the current ones.
    """
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)
    _dummy_hash = None


#: Each Argon2id check takes 64 MiB and a core for a moment: at most this many run at once,
#: so that a burst of logins (from many addresses, which throttling does not slow) cannot
#: take the server's memory. A check that finds no slot within HASH_WAIT is refused (busy).
HASH_CONCURRENCY = 2
HASH_WAIT = 10.0
_hash_slots = threading.BoundedSemaphore(HASH_CONCURRENCY)


class LoginBusy(DomainError):
    def __init__(self) -> None:
        super().__init__("Máy chủ đang bận xử lý nhiều lượt đăng nhập. Vui lòng thử lại sau ít giây.")


@contextlib.contextmanager
def _hash_slot() -> Iterator[None]:
    if not _hash_slots.acquire(timeout=HASH_WAIT):
        raise LoginBusy()
    try:
        yield
    finally:
        _hash_slots.release()


def hash_password(password: str) -> str:
    with _hash_slot():
        return _hasher.hash(password)


def verify_password(account: Account, password: str) -> bool:
    try:
        with _hash_slot():
            _hasher.verify(account.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return True


def check_password_strength(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"Mật khẩu phải có ít nhất {MIN_PASSWORD_LENGTH} ký tự.", field="password")
    if username and username.lower() in password.lower():
        raise ValidationError("Mật khẩu không được chứa tên đăng nhập.", field="password")
    if len(set(password)) < 5:
        raise ValidationError("Mật khẩu quá đơn giản.", field="password")


def generate_password() -> str:
    """A temporary password that is easy to read out over the phone (no 0/O, 1/l)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    groups = ["".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3)]
    return "-".join(groups)


# --------------------------------------------------------------------------- throttling
#
# Wrong passwords slow the guesser down instead of locking the owner out (finding 12.10: five
# wrong guesses used to lock the real owner out for 15 minutes). Failures are counted over
# the last hour in three ways, and each count past its free allowance makes the next attempt
# wait, doubling from one second up to a cap:
#   * one account from one address — the guesser at their keyboard: long waits;
#   * one address, whatever the account — a script trying many names: long waits;
#   * one account, from any address — guessing spread over many addresses: waits of at most
#     a minute, so that the owner, somewhere else, is slowed but never locked out.
# The owner is told (in-app and e-mail) when their account's count reaches its allowance.


@dataclass(frozen=True)
class Backoff:
    free: int
    cap: dt.timedelta

    def wait(self, failures: int) -> dt.timedelta:
        if failures < self.free:
            return dt.timedelta(0)
        return min(self.cap, dt.timedelta(seconds=2 ** min(failures - self.free, 20)))


PAIR_BACKOFF = Backoff(free=3, cap=dt.timedelta(minutes=15))
ADDRESS_BACKOFF = Backoff(free=10, cap=dt.timedelta(minutes=15))
ACCOUNT_BACKOFF = Backoff(free=5, cap=dt.timedelta(minutes=1))
THROTTLE_WINDOW = dt.timedelta(hours=1)


class LoginThrottled(DomainError):
    def __init__(self, retry_after: dt.timedelta) -> None:
        seconds = max(1, int(retry_after.total_seconds() + 0.999))
        wait = f"{seconds} giây" if seconds < 120 else f"{(seconds + 59) // 60} phút"
        super().__init__(f"Đăng nhập sai nhiều lần. Vui lòng chờ {wait} rồi thử lại.")
        self.retry_after = retry_after


class InvalidCredentials(DomainError):
    def __init__(self, tell_owner: Account | None = None) -> None:
        super().__init__("Tên đăng nhập hoặc mật khẩu không đúng.")
        #: Set when this failure brought the account's count to its allowance: its owner
        #: should hear that someone is guessing (the caller sends the notice).
        self.tell_owner = tell_owner


def _failures(session: Session, since: dt.datetime, *conditions: Any) -> tuple[int, dt.datetime | None]:
    count, last = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(LoginFailure.at > since, *conditions)).one()
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return int(count), last


def _throttle_check(session: Session, username: str, address: str, now: dt.datetime) -> None:
    since = now - THROTTLE_WINDOW
    waits = []
    for backoff, conditions in (
        (PAIR_BACKOFF, (LoginFailure.username == username, LoginFailure.address == address)),
        (ADDRESS_BACKOFF, (LoginFailure.address == address,)),
        (ACCOUNT_BACKOFF, (LoginFailure.username == username,)),
    ):
        count, last = _failures(session, since, *conditions)
        if last is not None:
            waits.append(last + backoff.wait(count) - now)
    longest = max(waits, default=dt.timedelta(0))
    if longest > dt.timedelta(0):
        raise LoginThrottled(longest)


def authenticate(session: Session, username: str, password: str, address: str, now: dt.datetime | None = None) -> Account:
    """Check a login; raises LoginThrottled or InvalidCredentials. Caller commits."""
    now = now or utcnow()
    key = clean_text(username).lower()[:64]
    address = address[:64]
    _throttle_check(session, key, address, now)
    account = session.scalar(select(Account).where(Account.username == key))
    if account is None or not account.is_active or not verify_password(account, password):
        if account is None:
            # Spend the same time as a real check, so timing does not reveal which names exist.
            _safe_dummy_verify()
        session.add(LoginFailure(at=now, username=key, address=address))
        session.flush()
        count, _ = _failures(session, now - THROTTLE_WINDOW, LoginFailure.username == key)
        raise InvalidCredentials(account if account is not None and count == ACCOUNT_BACKOFF.free else None)
    # The owner got in: their own address starts afresh (others' failures still count).
    session.execute(delete(LoginFailure).where(LoginFailure.username == key, LoginFailure.address == address))
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.last_login_at = now
    return account


_dummy_hash: str | None = None


def _safe_dummy_verify() -> None:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("dummy-password-for-timing")
    with contextlib.suppress(VerificationError), _hash_slot():
        _hasher.verify(_dummy_hash, "not-the-password")


# --------------------------------------------------------------------------- accounts

ACCOUNT_FIELDS = ("username", "display_name", "member_id", "must_change_password", "is_active")


def normalise_username(username: str) -> str:
    key = clean_text(username).lower()
    if not key or len(key) > 64 or any(c.isspace() for c in key):
        raise ValidationError("Tên đăng nhập không hợp lệ (không dấu cách, tối đa 64 ký tự).", field="username")
    return key


def create_account(
    session: Session,
    actor: Actor,
    *,
    username: str,
    password: str,
    display_name: str,
    member: Member | None = None,
    must_change_password: bool = True,
    organisation_id: int | None = None,
) -> Account:
    key = normalise_username(username)
    if session.scalar(select(Account.id).where(Account.username == key)) is not None:
        raise Conflict(f"Tên đăng nhập “{key}” đã có người dùng.", field="username")
    if member is not None and session.scalar(select(Account.id).where(Account.member_id == member.id)):
        raise Conflict(f"Đảng viên {member.full_name} đã có tài khoản.")
    check_password_strength(password, key)
    account = Account(
        username=key,
        display_name=clean_text(display_name) or key,
        password_hash=hash_password(password),
        member_id=member.id if member else None,
        must_change_password=must_change_password,
        created_by_id=actor.account_id,
    )
    session.add(account)
    session.flush()
    audit.record(
        session, actor, "account.create", account, None, audit.snapshot(account, ACCOUNT_FIELDS),
        organisation_id=organisation_id if organisation_id is not None else (member.home_cell_id if member else None),
    )
    return account


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound()
    return account


def change_password(session: Session, account: Account, current: str, new: str, confirm: str, *,
                    keep_session: int | None = None, now: dt.datetime | None = None) -> None:
    """Change one's own password; every other session of the account ends (``keep_session``,
    the one making the change, stays)."""
    if not verify_password(account, current):
        raise ValidationError("Mật khẩu hiện tại không đúng.", field="current")
    if new != confirm:
        raise ValidationError("Hai lần nhập mật khẩu mới không khớp.", field="confirm")
    if new == current:
        raise ValidationError("Mật khẩu mới phải khác mật khẩu hiện tại.", field="password")
    check_password_strength(new, account.username)
    account.password_hash = hash_password(new)
    now = now or utcnow()
    account.must_change_password = False
    account.password_changed_at = now
    account.session_epoch += 1
    sessions.end_all(session, account.id, sessions.EndReason.PASSWORD_CHANGED, now, keep=keep_session)
    audit.record(session, Actor(account.id, account.display_name), "account.password_change", account, None, None)


#: Which roles a grant of each role includes, over the same organisation or below it. Managing
#: a cell (secretary, deputy) includes a plain member's rights there; an admin includes every
#: role; an auditor's read-only right includes nothing but itself.
_INCLUDES: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(Role),
    Role.SECRETARY: frozenset({Role.SECRETARY, Role.DEPUTY, Role.MEMBER}),
    Role.DEPUTY: frozenset({Role.SECRETARY, Role.DEPUTY, Role.MEMBER}),
    Role.AUDITOR: frozenset({Role.AUDITOR}),
    Role.MEMBER: frozenset({Role.MEMBER}),
}


def _org_paths(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {org_id: path for org_id, path in session.execute(
        select(Organisation.id, Organisation.path).where(Organisation.id.in_(ids)))}


def holds_all_roles_of(session: Session, actor_account_id: int, target: Account) -> bool:
    """True when the actor holds every role the target holds, over the same or a wider
    organisation. Whoever takes over an account by resetting its password must gain nothing
    they do not already have: a cell secretary may reset a member's password, never an
    admin's or an auditor's (security finding: account takeover through a password reset)."""
    actor_grants = grants_of(session, actor_account_id)
    target_grants = grants_of(session, target.id)
    paths = _org_paths(session, {g.organisation_id for g in (*actor_grants, *target_grants)
                                 if g.organisation_id is not None})

    def covers(mine: RoleGrant, theirs: RoleGrant) -> bool:
        if theirs.role not in _INCLUDES[mine.role]:
            return False
        if mine.organisation_id is None:
            return True
        if theirs.organisation_id is None:
            return False
        return paths.get(theirs.organisation_id, "").startswith(paths.get(mine.organisation_id, "\0"))

    return all(any(covers(mine, theirs) for mine in actor_grants) for theirs in target_grants)


class ResetRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "Không thể cấp lại mật khẩu: tài khoản này có vai trò hoặc phạm vi rộng hơn của bạn "
            "(ví dụ quản trị hoặc cấp ủy cấp trên). Hãy đề nghị quản trị cấp trên cấp lại."
        )


def reset_password(session: Session, actor: Actor, account: Account, organisation_id: int | None, *,
                   now: dt.datetime | None = None) -> str:
    """Give the account a new temporary password that must be changed at next login.

    Refused (:class:`ResetRefused`) unless the actor holds every role of the account over the
    same or a wider organisation. The caller tells the owner (``notices.tell_account_owner``)."""
    if actor.account_id is None or not holds_all_roles_of(session, actor.account_id, account):
        raise ResetRefused()
    password = generate_password()
    account.password_hash = hash_password(password)
    account.must_change_password = True
    account.session_epoch += 1
    sessions.end_all(session, account.id, sessions.EndReason.PASSWORD_RESET, now or utcnow())
    audit.record(session, actor, "account.password_reset", account, None, None, organisation_id=organisation_id)
    return password


def grant_role(session: Session, actor: Actor, account: Account, role: Role, organisation: Organisation | None) -> RoleGrant:
    if organisation is None and role != Role.ADMIN:
        raise ValidationError("Vai trò này phải gắn với một tổ chức đảng.")
    if role in (Role.SECRETARY, Role.DEPUTY, Role.MEMBER) and organisation is not None and not organisation.is_cell:
        raise ValidationError("Vai trò bí thư, phó bí thư, đảng viên chỉ gắn với chi bộ.")
    org_condition = (
        RoleGrant.organisation_id == organisation.id
        if organisation is not None
        else RoleGrant.organisation_id.is_(None)
    )
    existing = session.scalar(
        select(RoleGrant).where(RoleGrant.account_id == account.id, RoleGrant.role == role, org_condition)
    )
    if existing is not None:
        return existing
    grant = RoleGrant(account_id=account.id, role=role, organisation_id=organisation.id if organisation else None)
    session.add(grant)
    session.flush()
    audit.record(
        session, actor, "role.grant", grant, None,
        {"account_id": account.id, "role": role.value, "organisation_id": grant.organisation_id},
        organisation_id=grant.organisation_id,
    )
    return grant


def revoke_role(session: Session, actor: Actor, grant: RoleGrant) -> None:
    before = {"account_id": grant.account_id, "role": grant.role.value, "organisation_id": grant.organisation_id}
    audit.record(session, actor, "role.revoke", grant, before, None, organisation_id=grant.organisation_id)
    session.delete(grant)
    session.flush()


def grants_of(session: Session, account_id: int) -> list[RoleGrant]:
    return list(session.scalars(select(RoleGrant).where(RoleGrant.account_id == account_id)))


def account_for_member(session: Session, member_id: int) -> Account | None:
    return session.scalar(select(Account).where(Account.member_id == member_id))
