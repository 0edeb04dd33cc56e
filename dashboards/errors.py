"""The dashboards' errors (categories map to HTTP statuses in one middleware)."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class DashboardsError(CallserverError):
    error_id = "dashboards-error"


class InvalidReportRequest(DashboardsError):
    """A bad filter, date or parameter; ``details['field']`` names it."""

    error_id = "dashboards-invalid"
    category = ErrorCategory.INVALID


class OperatorNotInCall(DashboardsError):
    error_id = "dashboards-operator-not-in-call"
    category = ErrorCategory.CONFLICT


class UnknownOperator(DashboardsError):
    error_id = "dashboards-unknown-operator"
    category = ErrorCategory.NOT_FOUND


class SpyFailed(DashboardsError):
    """Asterisk refused or never answered the ChanSpy Originate."""

    error_id = "dashboards-spy-failed"
    category = ErrorCategory.UPSTREAM_REJECTED
    public_message = "Asterisk did not start the listening call"


class ReportsUnavailable(DashboardsError):
    """PostgreSQL failed or timed out while building a report."""

    error_id = "dashboards-unavailable"
    category = ErrorCategory.UNAVAILABLE
    public_message = "the report could not be built now; try again"
