"""Charts drawn on the server as inline SVG: no JavaScript, readable on a 360-px phone.

* :func:`month_grid` — one row per cell (or per committee), one square per month: held on
  time, late, missing, not yet due; for a committee the square's colour is the share of its
  cells that held the month's meeting.
* :func:`trend` — attendance rate and away members' online participation per month.

Both scale to the page width (``viewBox``), carry a ``<title>`` on every mark for the
details, and are labelled in Vietnamese.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

#: Colours of the audit's month marks (the same as the page's badges).
COLOURS = {"on_time": "#1b7f3b", "late": "#d9a400", "missing": "#b3261e", "not_due": "#e2e4e8",
           "outside": "#f4f5f7"}
LABEL_WIDTH = 112
CELL = 18
GAP = 2
ROW = CELL + GAP


@dataclass(frozen=True)
class GridRow:
    label: str
    href: str | None
    #: Per month: a status key of COLOURS, or a share held (0.0–1.0) for a committee, or None.
    values: Sequence[str | float | None]
    #: Per month: the tooltip.
    titles: Sequence[str]


@functools.lru_cache(maxsize=1024)  # a province's grid repeats the same few shares
def _share_colour(share: float) -> str:
    """Red (nothing held) through amber to green (every cell held its meeting)."""
    share = max(0.0, min(1.0, share))
    if share < 0.5:
        a, b, t = (0xB3, 0x26, 0x1E), (0xD9, 0xA4, 0x00), share / 0.5
    else:
        a, b, t = (0xD9, 0xA4, 0x00), (0x1B, 0x7F, 0x3B), (share - 0.5) / 0.5
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _short(label: str, limit: int = 19) -> str:
    for prefix in ("Chi bộ ", "Đảng ủy ", "Đảng bộ "):
        if label.startswith(prefix):
            label = label[len(prefix):]
            break
    return label if len(label) <= limit else label[: limit - 1] + "…"


def month_grid(rows: Sequence[GridRow], months: Sequence[int], *, caption: str) -> Markup:
    width = LABEL_WIDTH + len(months) * ROW + 4
    height = 16 + len(rows) * ROW + 4
    # A group, not an image: its cells' row labels are links to each cell's audit.
    out = [f'<svg class="chart grid" viewBox="0 0 {width} {height}" width="100%" role="group" '
           f'aria-label="{escape(caption)}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">',
           f"<title>{escape(caption)}</title>"]
    for i, month in enumerate(months):
        x = LABEL_WIDTH + i * ROW + CELL / 2
        out.append(f'<text x="{x:.1f}" y="11" font-size="10" text-anchor="middle" fill="#5f6670">T{month}</text>')
    for r, row in enumerate(rows):
        y = 16 + r * ROW
        label = f'<text x="0" y="{y + CELL - 5}" font-size="12" fill="#1f2328">{escape(_short(row.label, 16))}' \
                f"<title>{escape(row.label)}</title></text>"
        out.append(f'<a href="{escape(row.href)}">{label}</a>' if row.href else label)
        for i, (value, title) in enumerate(zip(row.values, row.titles, strict=True)):
            if value is None:
                colour = COLOURS["not_due"]
            elif isinstance(value, float):
                colour = _share_colour(value)
            else:
                colour = COLOURS[value]
            x = LABEL_WIDTH + i * ROW
            out.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" rx="3" fill="{colour}">'
                       f"<title>{escape(title)}</title></rect>")
    out.append("</svg>")
    return Markup("".join(out))


def trend(points: Sequence[tuple[int, float | None, float | None]], *, caption: str) -> Markup:
    """``points``: (month, attendance rate, away online rate), rates 0–1 or None."""
    width, height = 340, 170
    left, right, top, bottom = 34, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(rate: float) -> float:
        return top + plot_h * (1 - rate)

    out = [f'<svg class="chart trend" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{escape(caption)}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">',
           f"<title>{escape(caption)}</title>"]
    for rate in (0.0, 0.5, 1.0):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(rate):.1f}" y2="{y(rate):.1f}" stroke="#e2e4e8"/>')
        out.append(f'<text x="{left - 4}" y="{y(rate) + 3.5:.1f}" font-size="10" text-anchor="end" '
                   f'fill="#5f6670">{int(rate * 100)}%</text>')
    for i, (month, _, _) in enumerate(points):
        out.append(f'<text x="{x(i):.1f}" y="{height - 10}" font-size="10" text-anchor="middle" '
                   f'fill="#5f6670">T{month}</text>')
    for index, colour, name in ((1, "#b3261e", "Tỷ lệ dự họp"), (2, "#0b5cad", "Đi làm ăn xa: tham gia trực tuyến")):
        coords = [(x(i), y(share), p[0], share) for i, p in enumerate(points) if (share := p[index]) is not None]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for cx, cy, month, share in coords:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
                       f"<title>{escape(name)}, tháng {month}: {share * 100:.0f}%</title></circle>")
    out.append("</svg>")
    return Markup("".join(out))
