"""Accounts the security tests need besides the shared world's (tests/support/world.py):

    dep_a    deputy secretary of cell A (member a3)
    dual     auditor of commune X, and a plain member of cell C in commune Y (member c1)
    dual2    secretary of cell A (no member link), and admin of commune Y

The two ``dual`` accounts hold roles in two different subtrees: each role must act only over
the organisations it was granted on (finding 12.3).
"""

from __future__ import annotations

import pytest

from meetings.foundation.actors import Actor
from meetings.organisation import accounts
from meetings.organisation.accounts import Account, Role
from meetings.organisation.members import Member
from tests.support.world import PASSWORD, World

ACTOR = Actor.system("test")


def add_account(session, world: World, username: str, member_key: str | None,
                grants: list[tuple[Role, str | None]]) -> int:  # type: ignore[no-untyped-def]
    member = session.get(Member, world.id(member_key)) if member_key else None
    account = accounts.create_account(session, ACTOR, username=username, password=PASSWORD,
                                      display_name=member.full_name if member else username, member=member,
                                      must_change_password=False)
    for role, org_key in grants:
        accounts.grant_role(session, ACTOR, account, role, world.orgs[org_key] if org_key else None)
    world.accounts[username] = account.id
    return account.id


@pytest.fixture
def more_accounts(database, world: World) -> World:
    with database.session() as s:
        add_account(s, world, "dep_a", "a3", [(Role.DEPUTY, "A")])
        add_account(s, world, "dual", "c1", [(Role.MEMBER, "C"), (Role.AUDITOR, "X")])
        add_account(s, world, "dual2", None, [(Role.SECRETARY, "A"), (Role.ADMIN, "Y")])
    return world


def account(session, world: World, username: str) -> Account:  # type: ignore[no-untyped-def]
    found = session.get(Account, world.accounts[username])
    assert found is not None
    return found
