"""axe-core in the page (from the `axe-playwright-python` test dependency, which ships
axe.min.js: nothing of it is kept in this repository) with the WCAG 2.1 A and AA rules."""

from __future__ import annotations

import json
from typing import Any

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: What fails a page: a serious or critical violation.
BLOCKING = ("serious", "critical")
OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}


def _script() -> str:
    from axe_playwright_python.base import AXE_SCRIPT

    return str(AXE_SCRIPT)


def blocking(violations: list[dict[str, Any]]) -> list[str]:
    """One line per serious or critical violation: rule, impact, the first elements."""
    out = []
    for v in violations:
        if v.get("impact") in BLOCKING:
            targets = [" ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])[:3]]
            out.append(f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(targets)}")
    return out


def audit_sync(page: Any) -> list[str]:
    page.evaluate(_script())
    result = page.evaluate(f"axe.run(document, {json.dumps(OPTIONS)})")
    return blocking(result["violations"])


async def audit_async(page: Any) -> list[str]:
    await page.evaluate(_script())
    result = await page.evaluate(f"axe.run(document, {json.dumps(OPTIONS)})")
    return blocking(result["violations"])
