"""Who is expected and who may vote on day D (decisions 7–9; cases C1, C2, C4)."""

import datetime as dt

from meetings.foundation.actors import Actor
from meetings.organisation import eligibility, members, organisations
from meetings.organisation.eligibility import Standing, agree_votes_needed, passes
from meetings.organisation.members import PeriodInput, PeriodKind
from meetings.organisation.organisations import OrgKind
from tests.support.world import add_member

ACTOR = Actor.system("test")
D = dt.date(2026, 11, 20)


def cell(session, code="CB"):
    province = organisations.create_organisation(
        session, ACTOR, kind=OrgKind.PROVINCE, name="Tỉnh ủy", code=f"P-{code}", parent=None, created_on=dt.date(2020, 1, 1)
    )
    return organisations.create_organisation(
        session, ACTOR, kind=OrgKind.CELL, name=f"Chi bộ {code}", code=code, parent=province, created_on=dt.date(2020, 1, 1)
    )


def exempt(member, start=dt.date(2025, 1, 1), end=None):
    return members.add_period(member._sa_instance_state.session, ACTOR, member, PeriodInput(
        kind=PeriodKind.EXEMPT, start_on=start, end_on=end, decision_number="01-NQ/CB", reason="Tuổi cao"))


def transfer(session, member, start, end, host_cell=None):
    return members.add_period(session, ACTOR, member, PeriodInput(
        kind=PeriodKind.TRANSFER_OUT, start_on=start, end_on=end,
        host_org_name=host_cell.name if host_cell else "Đảng bộ Công ty X", host_cell_id=host_cell.id if host_cell else None))


def test_case_c1_fifteen_official_two_exempt_one_transferred(session):
    """C1: D = 15 − 1 − 2 = 12; a resolution needs ≥ 7 agree votes; 9 of 12 present."""
    c = cell(session)
    people = [add_member(session, c, f"Đảng Viên Số {i}") for i in range(15)]
    exempt(people[0])
    exempt(people[1])
    transfer(session, people[2], dt.date(2026, 9, 1), dt.date(2027, 2, 28))
    e = eligibility.electorate(session, c.id, D)

    counts = e.counts()
    assert counts["total"] == 15 and counts["official"] == 15 and counts["probationary"] == 0
    assert counts["attached"] == 0 and counts["exempt"] == 2 and counts["transferred_out"] == 1
    assert counts["expected"] == 12
    present = [p.id for p in people[3:12]]  # 9 present; A, B, C (people[12:]) absent
    assert e.denominator(present) == 12
    assert agree_votes_needed(12) == 7
    assert passes(7, 12) and not passes(6, 12)
    assert {x.member_id for x in e.voters_present(present)} == set(present)
    # The exempt two are neither expected nor counted absent.
    assert {x.standing for x in e.entries if not x.expected} == {Standing.EXEMPT, Standing.TRANSFERRED_OUT}


def test_exempt_member_who_attends_counts_in_the_denominator_and_may_vote(session):
    c = cell(session)
    people = [add_member(session, c, f"Người {i}") for i in range(5)]
    exempt(people[0])
    e = eligibility.electorate(session, c.id, D)
    assert e.denominator([people[1].id]) == 4
    assert e.denominator([people[0].id, people[1].id]) == 5
    assert e.get(people[0].id).may_vote and not e.get(people[0].id).expected


def test_case_c2_probationary_and_attached_members_attend_but_do_not_vote(session):
    """C2: 10 official + 2 probationary + 1 SHT, all present: D = 10, 6 agree passes."""
    home = cell(session, "HOME")
    other = organisations.create_organisation(
        session, ACTOR, kind=OrgKind.CELL, name="Chi bộ khác", code="OTHER",
        parent=organisations.get_organisation(session, home.parent_id), created_on=dt.date(2020, 1, 1))
    officials = [add_member(session, home, f"Chính Thức {i}") for i in range(10)]
    probationary = [add_member(session, home, f"Dự Bị {i}", status="dự bị", admitted=dt.date(2026, 6, 1)) for i in range(2)]
    guest = add_member(session, other, "Khách Sinh Hoạt Tạm")
    transfer(session, guest, dt.date(2026, 10, 1), dt.date(2027, 3, 31), host_cell=home)

    e = eligibility.electorate(session, home.id, D)
    everyone = [m.id for m in officials + probationary + [guest]]
    assert e.denominator(everyone) == 10
    assert passes(6, 10)
    voters = {x.member_id for x in e.voters_present(everyone)}
    assert voters == {m.id for m in officials}
    sht = e.get(guest.id)
    assert sht.standing == Standing.ATTACHED and sht.expected and not sht.may_vote and not sht.in_roll
    assert sht.elsewhere == "Chi bộ khác"
    for p in probationary:
        entry = e.get(p.id)
        assert entry.standing == Standing.PROBATIONARY and entry.expected and not entry.may_vote
    counts = e.counts()
    assert (counts["total"], counts["official"], counts["probationary"], counts["attached"]) == (13, 10, 2, 1)
    # In the home cell the guest is "transferred out": not expected, not in D.
    at_home = eligibility.electorate(session, other.id, D).get(guest.id)
    assert at_home.standing == Standing.TRANSFERRED_OUT and not at_home.expected and at_home.in_roll


def test_case_c4_transfer_months_are_left_out_only_inside_the_period(session):
    """C4: M transfers 1 March – 31 August; expected in February and September only."""
    c = cell(session)
    m = add_member(session, c, "Thành Viên M")
    transfer(session, m, dt.date(2026, 3, 1), dt.date(2026, 8, 31))
    standing = {
        month: eligibility.electorate(session, c.id, dt.date(2026, month, 15)).get(m.id)
        for month in range(2, 10)
    }
    assert standing[2].expected and standing[9].expected
    assert all(standing[mo].standing == Standing.TRANSFERRED_OUT and not standing[mo].expected for mo in range(3, 9))
    assert eligibility.electorate(session, c.id, dt.date(2026, 8, 31)).get(m.id).standing == Standing.TRANSFERRED_OUT


def test_suspended_members_are_not_expected_nor_in_d(session):
    c = cell(session)
    people = [add_member(session, c, f"Người {i}") for i in range(3)]
    members.add_period(session, ACTOR, people[0], PeriodInput(
        kind=PeriodKind.SUSPENDED, start_on=dt.date(2026, 10, 1), decision_number="09-QĐ/UBKT"))
    e = eligibility.electorate(session, c.id, D)
    assert e.get(people[0].id).standing == Standing.SUSPENDED
    assert e.denominator([p.id for p in people]) == 2


def test_away_members_stay_expected(session, world):
    e = eligibility.electorate(session, world.orgs["A"].id, D)
    a4 = e.get(world.members["a4"].id)
    assert a4.away and a4.expected and a4.may_vote
    assert e.counts()["away"] == 1


def test_status_and_membership_on_the_day(session):
    """Not yet admitted → absent from the list; probationary before the official date."""
    c = cell(session)
    late = add_member(session, c, "Mới Vào", status="dự bị", admitted=dt.date(2026, 11, 25))
    assert eligibility.electorate(session, c.id, dt.date(2026, 11, 1)).get(late.id) is None
    assert eligibility.electorate(session, c.id, dt.date(2026, 11, 26)).get(late.id).standing == Standing.PROBATIONARY
    official = add_member(session, c, "Vừa Chính Thức", admitted=dt.date(2025, 10, 1))
    assert official.official_on == dt.date(2026, 10, 1)
    assert eligibility.electorate(session, c.id, dt.date(2026, 9, 30)).get(official.id).standing == Standing.PROBATIONARY
    assert eligibility.electorate(session, c.id, dt.date(2026, 10, 1)).get(official.id).standing == Standing.OFFICIAL


def test_a_member_who_moved_cells_belongs_to_each_cell_in_its_own_time(session):
    old = cell(session, "OLD")
    new = organisations.create_organisation(
        session, ACTOR, kind=OrgKind.CELL, name="Chi bộ mới", code="NEW",
        parent=organisations.get_organisation(session, old.parent_id), created_on=dt.date(2020, 1, 1))
    m = add_member(session, old, "Người Chuyển")
    members.move_member(session, ACTOR, m, new, dt.date(2026, 7, 1), "Chuyển nơi cư trú")
    assert eligibility.electorate(session, old.id, dt.date(2026, 6, 30)).get(m.id) is not None
    assert eligibility.electorate(session, old.id, dt.date(2026, 7, 1)).get(m.id) is None
    assert eligibility.electorate(session, new.id, dt.date(2026, 7, 1)).get(m.id) is not None
