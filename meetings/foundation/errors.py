"""Typed domain errors. Their messages are shown to users, so they are in Vietnamese."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse; nothing has been stored."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DomainError):
    """Input that is malformed or inconsistent (HTTP 400/422)."""


class NotFound(DomainError):
    """The object does not exist, or the account may not know that it exists (HTTP 404)."""

    def __init__(self, message: str = "Không tìm thấy trang hoặc dữ liệu yêu cầu.") -> None:
        super().__init__(message)


class Forbidden(DomainError):
    """The account may see the object but not do this to it (HTTP 403)."""

    def __init__(self, message: str = "Bạn không có quyền thực hiện thao tác này.") -> None:
        super().__init__(message)


class Conflict(DomainError):
    """The change clashes with stored data (HTTP 409), e.g. a duplicate card number."""
