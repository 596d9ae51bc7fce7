"""Finding 12.10: a member's phone number is shown to the cell's secretary and deputies (and the
member), and to every cell-mate only when the member agrees."""

from sqlalchemy import select

from meetings.foundation.audit import AuditEntry
from meetings.organisation.members import Member
from tests.support.web import post

PHONE = "0912345678"


def test_phone_numbers_are_for_the_cells_leaders_unless_the_member_agrees(database, more_accounts, client_as):
    world = more_accounts
    with database.session() as s:
        s.get(Member, world.id("a2")).phone = PHONE
    cell, a2 = f"/cells/{world.id('A')}", f"/members/{world.id('a2')}"
    member, deputy, secretary = client_as("away_a"), client_as("dep_a"), client_as("sec_a")
    auditor = client_as("aud_x")
    for viewer in (member, auditor):
        assert PHONE not in viewer.get(cell).text
        assert PHONE not in viewer.get(a2).text
    for viewer in (deputy, secretary):
        assert PHONE in viewer.get(cell).text and PHONE in viewer.get(a2).text
    owner = client_as("mem_a")
    assert PHONE in owner.get(a2).text
    # Only the member decides; a secretary cannot agree for them.
    assert post(secretary, f"{a2}/phone-sharing", {"shared": "1"}).status_code == 403
    assert PHONE not in member.get(cell).text
    assert post(owner, f"{a2}/phone-sharing", {"shared": "1"}).status_code == 303
    assert PHONE in member.get(cell).text and PHONE in member.get(a2).text
    assert PHONE in auditor.get(a2).text
    with database.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.phone_sharing")).one()
        assert entry.actor_account_id == world.accounts["mem_a"]
    assert post(owner, f"{a2}/phone-sharing", {"shared": "0"}).status_code == 303
    assert PHONE not in member.get(cell).text
