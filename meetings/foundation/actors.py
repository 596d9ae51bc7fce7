"""Who is acting: passed into every operation that changes data, for the audit log."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    account_id: int | None
    label: str
    address: str | None = None

    @classmethod
    def system(cls, label: str = "hệ thống") -> Actor:
        return cls(account_id=None, label=label)
