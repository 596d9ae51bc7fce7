"""Finding 12.3: each role's rights hold only over the organisations it was granted on.

An auditor of commune X who is a plain member of a cell in commune Y used to get that cell's
audit-only pages, which a plain member gets 403 on. Likewise an admin of one subtree who is
a cell's secretary elsewhere must not act as an admin there.
"""

from sqlalchemy import func, select

from meetings.evaluation.policies import EvaluationPolicy
from meetings.foundation.audit import AuditEntry
from tests.support.web import post
from tests.support.world import hold_meetings, review_objects


def audit_only_pages(world, cell_key: str, member_key: str) -> list[str]:
    cell, member, meeting = world.id(cell_key), world.id(member_key), world.meetings[cell_key]
    return [
        f"/cells/{cell}/records", f"/cells/{cell}/log", f"/cells/{cell}/audit", f"/cells/{cell}/compliance",
        f"/orgs/{cell}/audit", f"/orgs/{cell}/log", f"/orgs/{cell}/records", f"/orgs/{cell}/audit.csv",
        f"/orgs/{cell}/audit.xlsx",
        f"/meetings/{meeting}/attendance", f"/meetings/{meeting}/attendance.csv",
        f"/members/{member}/record", f"/members/{member}/review/2026", f"/members/{member}/attendance",
        f"/members/{member}/review/2026/file",
    ]


def test_an_auditor_gets_only_member_rights_in_the_cell_where_they_are_a_member(
        database, more_accounts, client_as, settings):
    world = more_accounts
    with database.session() as s:
        hold_meetings(s, world, ("A", "C"))
        review_objects(s, world, "c2", settings.data_dir)
        review_objects(s, world, "a2", settings.data_dir)
    dual = client_as("dual")  # auditor of X, member of C (as c1)
    for url in audit_only_pages(world, "C", "c2"):
        r = dual.get(url, follow_redirects=False)
        assert r.status_code == 403, f"{url} → {r.status_code}"
        assert "Không có quyền truy cập" in r.text
    # The member pages of the cell stay readable, without the cell-mate's private fields.
    page = dual.get(f"/members/{world.id('c2')}")
    assert page.status_code == 200 and "Số thẻ đảng viên" not in page.text
    assert "Kiểm tra nền nếp" not in dual.get(f"/cells/{world.id('C')}").text
    # Where the auditor grant holds (commune X), the same pages open.
    for url in audit_only_pages(world, "A", "a2"):
        assert dual.get(url, follow_redirects=False).status_code in (200, 303), url


def test_an_admin_of_one_commune_is_only_a_secretary_in_a_cell_of_another(database, more_accounts, client_as):
    world = more_accounts
    dual2 = client_as("dual2")  # secretary of A (commune X), admin of commune Y
    with database.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    r = post(dual2, f"/orgs/{world.id('A')}/evaluation-policy",
             {"count_thematic": "1", "review_date": "1/12", "basis": "Thử vượt quyền"})
    assert r.status_code == 403
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before
        assert s.scalar(select(func.count()).select_from(EvaluationPolicy)) == 0
    assert "/evaluation-policy" not in dual2.get(f"/cells/{world.id('A')}/audit").text
    # As the admin of Y it may.
    r = post(dual2, f"/orgs/{world.id('Y')}/evaluation-policy",
             {"count_thematic": "1", "review_date": "1/12", "basis": "Quyết định 12"})
    assert r.status_code == 303
