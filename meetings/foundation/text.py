"""Parsing and normalising what people type: Vietnamese names, dates, phone numbers."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from .errors import ValidationError

_SPACES = re.compile(r"\s+")
_PHONE = re.compile(r"^\+?[0-9]{8,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CARD = re.compile(r"^[0-9][0-9.]{3,19}$")


def clean_text(value: str | None) -> str:
    """NFC-normalise and collapse whitespace.

    Vietnamese typed on macOS or copied from some PDFs arrives decomposed (NFD): "Nguyễn"
    would then never equal "Nguyễn" typed elsewhere. NFC makes stored names comparable.
    """
    if value is None:
        return ""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def optional_text(value: str | None) -> str | None:
    cleaned = clean_text(value)
    return cleaned or None


def parse_date(value: str | dt.date | None, *, label: str, required: bool = True) -> dt.date | None:
    """Accept dd/mm/yyyy (how dates are written in Vietnam) and ISO yyyy-mm-dd."""
    if isinstance(value, dt.date):
        return value
    text = clean_text(value)
    if not text:
        if required:
            raise ValidationError(f"{label}: không được để trống.")
        return None
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValidationError(f"{label}: “{text}” không phải ngày hợp lệ (dạng ngày/tháng/năm, ví dụ 05/09/1985).")


def parse_phone(value: str | None) -> str | None:
    text = re.sub(r"[\s.\-()]", "", clean_text(value))
    if not text:
        return None
    if not _PHONE.match(text):
        raise ValidationError(f"Số điện thoại “{clean_text(value)}” không hợp lệ.")
    return text


def parse_email(value: str | None) -> str | None:
    text = clean_text(value).lower()
    if not text:
        return None
    if not _EMAIL.match(text) or len(text) > 200:
        raise ValidationError(f"Địa chỉ email “{clean_text(value)}” không hợp lệ.")
    return text


def parse_card_number(value: str | None) -> str | None:
    text = clean_text(value).replace(" ", "")
    if not text:
        return None
    if not _CARD.match(text):
        raise ValidationError(f"Số thẻ đảng viên “{text}” không hợp lệ (chỉ gồm chữ số và dấu chấm).")
    return text


def format_date(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def fold(value: str) -> str:
    """Accent- and case-insensitive key, for search and for matching CSV headers."""
    decomposed = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower().strip()


def name_sort_key(full_name: str) -> tuple[str, str]:
    """Vietnamese rosters sort by given name (the last word), then the whole name."""
    parts = full_name.split()
    return (fold(parts[-1]) if parts else "", fold(full_name))
