"""Errors of the routing package: one root (``RoutingError``), keyword-only constructors.

Errors carry an ``error_id`` and details, never an HTTP status (the web middleware maps them).
"""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class RoutingError(CallserverError):
    """Root of every error the routing package raises on purpose."""

    error_id = "routing-error"


class RulesError(RoutingError):
    """The rules file is invalid; ``details['rule']`` names the bad rule (``skills.x.digits``)."""

    error_id = "routing-rules-invalid"
    category = ErrorCategory.INVALID


class RulesReloadFailed(RoutingError):
    """``POST /api/routing/rules/reload`` did not take effect (no file, or the file is invalid:
    the old rules stay); ``details`` carry the version in force and the file's error."""

    error_id = "routing-rules-not-reloaded"
    category = ErrorCategory.INVALID


class OverrideError(RoutingError):
    """A run-time override request is invalid (``details['field']`` names the bad field)."""

    error_id = "routing-override-invalid"
    category = ErrorCategory.INVALID


class OverrideNotFound(RoutingError):
    """No active override has that id."""

    error_id = "routing-override-not-found"
    category = ErrorCategory.NOT_FOUND


class DecisionNotFound(RoutingError):
    """No routing decision is known for that call."""

    error_id = "routing-decision-not-found"
    category = ErrorCategory.NOT_FOUND
