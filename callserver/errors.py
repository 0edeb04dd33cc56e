"""Root of callserver's exception hierarchy.

Errors carry an ``error_id`` (a stable machine-readable code), ``details`` and a ``category``
named in domain words (invalid, not found, conflict …), declared on the class; never an HTTP
status. One web middleware (``callserver.web.middlewares``) maps categories to statuses for every
domain.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCategory(StrEnum):
    """What kind of failure an error is, for whoever answers the request."""

    INVALID = "invalid"
    """The caller's input is wrong (a field, a parameter, a config key)."""
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    """The caller sent more than the endpoint takes (a request body over its limit)."""
    UPSTREAM_REJECTED = "upstream_rejected"
    """A system we depend on (Asterisk, the CRM) refused the request."""
    UNAVAILABLE = "unavailable"
    """A dependency is down; retrying later may work."""
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class CallserverError(Exception):
    """Base of every error callserver raises on purpose."""

    error_id = "callserver-error"
    category: ClassVar[ErrorCategory] = ErrorCategory.INTERNAL
    public_message: ClassVar[str | None] = None
    """Set on errors whose message may carry library or database text: clients get this
    instead (the full message goes to the log)."""

    def __init__(self, *, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


class ConfigError(CallserverError):
    """The configuration is invalid; ``details['key']`` names the bad key."""

    error_id = "config-invalid"
    category = ErrorCategory.INVALID
