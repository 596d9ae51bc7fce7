import datetime as dt

import pytest

from meetings.foundation.actors import Actor
from meetings.foundation.errors import Conflict, ValidationError
from meetings.organisation import organisations
from meetings.organisation.organisations import OrgKind

ACTOR = Actor.system("test")


def make(session, kind, code, parent=None, on=dt.date(2020, 1, 1)):
    return organisations.create_organisation(
        session, ACTOR, kind=kind, name=f"Tổ chức {code}", code=code, parent=parent, created_on=on
    )


def test_tree_of_any_depth_with_cells_under_any_committee(session):
    province = make(session, OrgKind.PROVINCE, "TINH")
    district = make(session, OrgKind.DISTRICT, "HUYEN", province)
    commune = make(session, OrgKind.COMMUNE, "XA", district)
    grassroots = make(session, OrgKind.GRASSROOTS, "CONGTY", province)
    cell_deep = make(session, OrgKind.CELL, "CB1", commune)
    cell_direct = make(session, OrgKind.CELL, "CB2", province)
    cell_grassroots = make(session, OrgKind.CELL, "CB3", grassroots)

    assert cell_deep.depth == 3
    assert [o.code for o in organisations.ancestors(session, cell_deep)] == ["TINH", "HUYEN", "XA"]
    cells = organisations.subtree(session, province, kind=OrgKind.CELL)
    assert {c.code for c in cells} == {"CB1", "CB2", "CB3"}
    assert {c.code for c in organisations.subtree(session, commune)} == {"XA", "CB1"}
    assert cell_direct.parent_id == province.id and cell_grassroots.parent_id == grassroots.id


def test_structural_rules_are_enforced(session):
    province = make(session, OrgKind.PROVINCE, "TINH")
    cell = make(session, OrgKind.CELL, "CB", province)
    with pytest.raises(ValidationError, match="Chi bộ không thể có tổ chức trực thuộc"):
        make(session, OrgKind.CELL, "CB-CON", cell)
    with pytest.raises(ValidationError, match="phải trực thuộc"):
        make(session, OrgKind.COMMUNE, "XA-MO-COI")
    with pytest.raises(Conflict, match="đã được dùng"):
        make(session, OrgKind.CELL, "cb", province)


def test_moving_a_cell_keeps_where_it_stood_before(session):
    province = make(session, OrgKind.PROVINCE, "TINH")
    old = make(session, OrgKind.COMMUNE, "XA-CU", province)
    new = make(session, OrgKind.COMMUNE, "XA-MOI", province)
    cell = make(session, OrgKind.CELL, "CB", old)

    organisations.move_organisation(session, ACTOR, cell, new, dt.date(2025, 7, 1))

    assert cell.parent_id == new.id
    assert cell.path == f"{new.path}{cell.id}/"
    assert organisations.parent_on(session, cell.id, dt.date(2025, 6, 30)) == old.id
    assert organisations.parent_on(session, cell.id, dt.date(2025, 7, 1)) == new.id
    assert organisations.lineage_on(session, cell.id, dt.date(2024, 1, 1)) == [cell.id, old.id, province.id]
    with pytest.raises(ValidationError):
        organisations.move_organisation(session, ACTOR, old, old, dt.date(2025, 7, 1))


def test_merging_communes_dissolves_them_without_losing_history(session):
    """1 July 2025: districts end, communes merge; old records still resolve to their commune."""
    province = make(session, OrgKind.PROVINCE, "TINH")
    district = make(session, OrgKind.DISTRICT, "HUYEN", province)
    a = make(session, OrgKind.COMMUNE, "XA-A", district)
    b = make(session, OrgKind.COMMUNE, "XA-B", district)
    merged = make(session, OrgKind.COMMUNE, "XA-MOI", province, on=dt.date(2025, 7, 1))
    cell_a = make(session, OrgKind.CELL, "CB-A", a)
    cell_b = make(session, OrgKind.CELL, "CB-B", b)

    organisations.merge_organisations(session, ACTOR, [a, b], merged, dt.date(2025, 7, 1))

    assert a.dissolved_on == dt.date(2025, 6, 30) and a.successor_id == merged.id
    assert {c.id for c in organisations.subtree(session, merged, kind=OrgKind.CELL)} == {cell_a.id, cell_b.id}
    assert organisations.lineage_on(session, cell_a.id, dt.date(2025, 6, 1)) == [cell_a.id, a.id, district.id, province.id]
    assert organisations.lineage_on(session, cell_b.id, dt.date(2025, 8, 1)) == [cell_b.id, merged.id, province.id]
    # The dissolved commune still exists, with nothing left under it.
    assert organisations.subtree(session, a) == [a]
