"""Finding 12.1: a password reset never hands anyone more than they already hold.

A cell secretary could reset the password of any account linked to a member of the cell —
a province admin's included — and then log in as that admin. Now whoever resets must hold
every role of the target over the same or a wider organisation; the owner is told in-app and
by e-mail; the audit log keeps the reset.
"""

from sqlalchemy import select
from starlette.testclient import TestClient

from app.mailer import SmtpMailer
from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.organisation import accounts
from meetings.organisation.accounts import Account, Role
from meetings.organisation.members import Member
from meetings.planning.notices import Notice, NoticeOptions, run_due_notices
from tests.support.web import login, post
from tests.support.world import PASSWORD

ACTOR = Actor.system("test")


def _make_admin_a_member_of_cell_a(database, world) -> None:
    """The province admin is also a party member of cell A (the realistic case)."""
    with database.session() as s:
        admin = s.get(Account, world.accounts["admin"])
        admin.member_id = world.id("a3")
        s.get(Member, world.id("a3")).email = "dung@example.vn"
        accounts.grant_role(s, ACTOR, admin, Role.MEMBER, world.orgs["A"])


def test_a_secretary_cannot_reset_an_admins_password(app, database, world, client_as):
    _make_admin_a_member_of_cell_a(database, world)
    secretary = client_as("sec_a")
    page = secretary.get(f"/members/{world.id('a3')}")
    assert "Cấp lại mật khẩu tạm" not in page.text
    assert "chỉ quản trị cấp trên được cấp lại mật khẩu" in page.text

    r = post(secretary, f"/members/{world.id('a3')}/account")
    assert r.status_code == 403
    assert "vai trò hoặc phạm vi rộng hơn" in r.text
    # Nothing changed: the owner still logs in with the old password, no reset is logged.
    with TestClient(app, base_url="http://127.0.0.1:8000") as owner:
        login(owner, "admin", PASSWORD)
        assert owner.get("/", follow_redirects=False).status_code == 200
    with database.session() as s:
        assert not s.scalars(select(AuditEntry).where(AuditEntry.action == "account.password_reset")).all()


def test_an_auditor_account_is_not_reset_by_the_cells_secretary(database, world, client_as):
    with database.session() as s:
        auditor = s.get(Account, world.accounts["aud_x"])
        auditor.member_id = world.id("a3")
        accounts.grant_role(s, ACTOR, auditor, Role.MEMBER, world.orgs["A"])
    r = post(client_as("sec_a"), f"/members/{world.id('a3')}/account")
    assert r.status_code == 403


def test_the_secretary_resets_a_members_password_and_the_owner_is_told(app, database, world, client_as, smtp, inbox):
    with database.session() as s:
        s.get(Member, world.id("a2")).email = "ngoc@example.vn"
    old_session = client_as("mem_a")
    r = post(client_as("sec_a"), f"/members/{world.id('a2')}/account")
    assert r.status_code == 200 and "Đã cấp lại mật khẩu tạm" in r.text

    # The owner's old session is over and an in-app notice waits after the next login.
    assert old_session.get("/", follow_redirects=False).status_code == 303
    with database.session() as s:
        notice = s.scalars(select(Notice).where(Notice.member_id == world.id("a2"))).one()
        assert notice.event == "password_reset" and notice.email == "ngoc@example.vn"
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.password_reset")).one()
        assert entry.actor_account_id == world.accounts["sec_a"]
    run_due_notices(database.sessions, app.state.clock(), SmtpMailer(smtp.host, smtp.port, sender="x@chibo.vn").send,
                    NoticeOptions(), extend=False)
    [mail] = inbox.to("ngoc@example.vn")
    assert "đã được cấp lại" in mail["Subject"]
    assert "Nguyễn Văn Ấn" in mail.get_content()  # who did it


def test_a_platform_admin_may_reset_any_account(database, world, client_as):
    _make_admin_a_member_of_cell_a(database, world)
    with database.session() as s:
        other = accounts.create_account(s, ACTOR, username="admin2", password=PASSWORD, display_name="Quản trị 2",
                                        must_change_password=False)
        accounts.grant_role(s, ACTOR, other, Role.ADMIN, None)
    # admin2 holds admin platform-wide, which covers the first admin's admin and member roles.
    r = post(client_as("admin2"), f"/members/{world.id('a3')}/account")
    assert r.status_code == 200
