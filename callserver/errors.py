"""Root of callserver's exception hierarchy.

Errors carry an ``error_id`` (a stable machine-readable code) and ``details``; never an HTTP status.
The web layer's middleware maps them to responses.
"""

from __future__ import annotations

from typing import Any


class CallserverError(Exception):
    """Base of every error callserver raises on purpose."""

    error_id = "callserver-error"

    def __init__(self, *, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


class ConfigError(CallserverError):
    """The configuration is invalid; ``details['key']`` names the bad key."""

    error_id = "config-invalid"
