"""crm_bridge errors: one root (``CrmError``), keyword-only constructors, no HTTP statuses.

``http.py`` maps ``error_id`` to a status at the HTTP edge.
"""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class CrmError(CallserverError):
    """Root of every error crm_bridge raises on purpose."""

    error_id = "crm-error"


class CrmUnavailable(CrmError):
    """The CRM could not be reached or answered 5xx / garbage: worth retrying later."""

    error_id = "crm-unavailable"
    category = ErrorCategory.UNAVAILABLE


class CrmTimeout(CrmUnavailable):
    """The CRM did not answer within the deadline (``details['timeout']`` in seconds)."""

    error_id = "crm-timeout"
    category = ErrorCategory.TIMEOUT


class CrmRejected(CrmError):
    """The CRM refused the request for good (4xx): retrying the same request will not help."""

    error_id = "crm-rejected"
    category = ErrorCategory.UPSTREAM_REJECTED


class CrmNotFound(CrmError):
    """A patient, appointment or outbox row with the given id does not exist."""

    error_id = "crm-not-found"
    category = ErrorCategory.NOT_FOUND


class CrmValidationError(CrmError, ValueError):
    """Input (HTTP body, CSV row, config) is invalid; ``details['field']`` names the field."""

    error_id = "crm-invalid"
    category = ErrorCategory.INVALID


class OutboxError(CrmError):
    """The outbox could not store or update a row."""

    error_id = "crm-outbox-error"
    category = ErrorCategory.UNAVAILABLE
