"""Jinja2 environment with the filters the Vietnamese pages need."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from meetings.foundation.base import LOCAL_TZ

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

WEEKDAYS = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật"]


def vn_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(LOCAL_TZ).date()
    return value.strftime("%d/%m/%Y")


def vn_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(LOCAL_TZ).strftime("%H:%M, %d/%m/%Y")


def vn_time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(LOCAL_TZ).strftime("%H:%M")


def vn_weekday(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(LOCAL_TZ).date()
    return WEEKDAYS[value.weekday()]


def iso_date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def vn_date_iso(value: dt.datetime | None) -> str:
    """The local (Vietnam) date of an instant, as an <input type=date> value."""
    return value.astimezone(LOCAL_TZ).date().isoformat() if value else ""


def percent(value: float | None) -> str:
    """A rate as a whole percentage ("75%"), or an em dash when there is nothing to divide."""
    return "—" if value is None else f"{value * 100:.0f}%"


def months_list(months: list[int] | tuple[int, ...]) -> str:
    """[3, 6, 9] → "3, 6, 9" (Vietnamese lists months by number)."""
    return ", ".join(str(m) for m in months)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters: dict[str, Any] = {
        "vn_date": vn_date,
        "vn_datetime": vn_datetime,
        "vn_time": vn_time,
        "vn_weekday": vn_weekday,
        "iso_date": iso_date,
        "vn_date_iso": vn_date_iso,
        "percent": percent,
        "months_list": months_list,
    }
    env.filters.update(filters)
    return env
