import datetime as dt

import pytest
from sqlalchemy import func, select

from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.foundation.errors import Conflict, ValidationError
from meetings.organisation import members
from meetings.organisation.members import (
    MemberInput,
    MemberPeriod,
    MemberStatus,
    PeriodInput,
    PeriodKind,
)
from tests.support.snapshot import unchanged
from tests.support.world import add_member

ACTOR = Actor.system("test")
TODAY = dt.date(2026, 11, 27)


def test_vietnamese_names_are_kept_and_normalised(session, world):
    cell = world.orgs["A"]
    decomposed = "Nguye\u0302\u0303n  Thi\u0323  Ánh"  # NFD as typed on some phones, double space
    m = members.create_member(
        session, ACTOR, cell,
        MemberInput(full_name=decomposed, birth_date="01/02/1990", card_number="48 555 111".replace(" ", ""),
                    admitted_on="2015-03-03", status="Chính thức"),
        today=TODAY,
    )
    assert m.full_name == "Nguyễn Thị Ánh"
    assert m.status == MemberStatus.OFFICIAL
    assert m.official_on == dt.date(2016, 3, 3)


def test_member_validation_reports_every_problem(session, world):
    with pytest.raises(ValidationError) as err:
        members.create_member(
            session, ACTOR, world.orgs["A"],
            MemberInput(full_name="", birth_date="31/02/1990", admitted_on="", status="cảm tình"),
            today=TODAY,
        )
    message = err.value.message
    assert "Họ và tên" in message and "Ngày sinh" in message and "Ngày vào Đảng" in message
    assert "cảm tình" in message


def test_probation_defaults_to_twelve_months(session, world):
    m = add_member(session, world.orgs["A"], "Lê Văn Mới", status="dự bị", admitted=dt.date(2026, 5, 19))
    assert m.probation_ends_on == dt.date(2027, 5, 19)
    assert m.card_number is None


def test_card_numbers_are_unique(session, world):
    taken = world.members["a1"].card_number
    with unchanged(session), pytest.raises(Conflict, match=taken):
        members.create_member(
            session, ACTOR, world.orgs["B"],
            MemberInput(full_name="Người Trùng Thẻ", birth_date="1990-01-01", card_number=taken,
                        admitted_on="2015-01-01", status="chính thức"),
            today=TODAY,
        )


def away(start, end=None, place="Đồng Nai"):
    return PeriodInput(kind=PeriodKind.AWAY, start_on=start, end_on=end, place=place)


def test_periods_of_one_kind_must_not_overlap(session, world):
    m = world.members["a2"]
    members.add_period(session, ACTOR, m, away(dt.date(2026, 1, 1), dt.date(2026, 3, 31)))
    before = session.scalar(select(func.count()).select_from(MemberPeriod))
    with unchanged(session), pytest.raises(ValidationError, match="trùng với giai đoạn đã có"):
        members.add_period(session, ACTOR, m, away(dt.date(2026, 3, 31), dt.date(2026, 6, 30)))
    with unchanged(session), pytest.raises(ValidationError, match="trùng"):
        members.add_period(session, ACTOR, m, away(dt.date(2025, 1, 1)))  # open-ended from before
    assert session.scalar(select(func.count()).select_from(MemberPeriod)) == before
    # Adjacent is fine, and another kind may overlap.
    members.add_period(session, ACTOR, m, away(dt.date(2026, 4, 1), dt.date(2026, 6, 30)))
    members.add_period(
        session, ACTOR, m,
        PeriodInput(kind=PeriodKind.EXEMPT, start_on="01/02/2026", decision_number="01-NQ/CB",
                    reason="Tạm miễn khi đi làm ăn xa", exempt_kind="temporary"),
    )


def test_open_period_blocks_later_ones_and_edits_are_checked_too(session, world):
    m = world.members["a2"]
    first = members.add_period(session, ACTOR, m, away(dt.date(2026, 1, 1), dt.date(2026, 1, 31)))
    members.add_period(session, ACTOR, m, away(dt.date(2026, 5, 1)))
    with unchanged(session), pytest.raises(ValidationError, match="trùng"):
        members.add_period(session, ACTOR, m, away(dt.date(2027, 1, 1), dt.date(2027, 2, 1)))
    with unchanged(session), pytest.raises(ValidationError, match="trùng"):
        members.update_period(session, ACTOR, first, away(dt.date(2026, 1, 1), dt.date(2026, 6, 1)))
    assert first.end_on == dt.date(2026, 1, 31)


def test_period_fields_required_by_kind(session, world):
    m = world.members["a2"]
    with unchanged(session), pytest.raises(ValidationError, match="số quyết định"):
        members.add_period(session, ACTOR, m, PeriodInput(kind=PeriodKind.EXEMPT, start_on="2026-01-01", reason="x"))
    with unchanged(session), pytest.raises(ValidationError, match="nơi đi làm ăn xa"):
        members.add_period(session, ACTOR, m, PeriodInput(kind=PeriodKind.AWAY, start_on="2026-01-01"))
    with unchanged(session), pytest.raises(ValidationError, match="phải sau"):
        members.add_period(session, ACTOR, m, away(dt.date(2026, 5, 1), dt.date(2026, 4, 1)))


def test_every_change_is_audited_with_before_and_after(session, world):
    m = world.members["a2"]
    members.update_member(
        session, ACTOR, m,
        MemberInput(full_name=m.full_name, birth_date=m.birth_date, card_number=m.card_number,
                    admitted_on=m.admitted_on, status="chính thức", phone="0912 345 678"),
        today=TODAY,
    )
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "member.update")).one()
    assert entry.before["phone"] is None and entry.after["phone"] == "0912345678"
    assert entry.organisation_id == world.orgs["A"].id
