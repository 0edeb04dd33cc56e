"""crm_bridge errors: one root (``CrmError``), keyword-only constructors, no HTTP statuses.

``http.py`` maps ``error_id`` to a status at the HTTP edge.
"""

from __future__ import annotations

from callserver.errors import CallserverError


class CrmError(CallserverError):
    """Root of every error crm_bridge raises on purpose."""

    error_id = "crm-error"


class CrmUnavailable(CrmError):
    """The CRM could not be reached or answered 5xx / garbage: worth retrying later."""

    error_id = "crm-unavailable"


class CrmTimeout(CrmUnavailable):
    """The CRM did not answer within the deadline (``details['timeout']`` in seconds)."""

    error_id = "crm-timeout"


class CrmRejected(CrmError):
    """The CRM refused the request for good (4xx): retrying the same request will not help."""

    error_id = "crm-rejected"


class CrmNotFound(CrmError):
    """A patient, appointment or outbox row with the given id does not exist."""

    error_id = "crm-not-found"


class CrmValidationError(CrmError, ValueError):
    """Input (HTTP body, CSV row, config) is invalid; ``details['field']`` names the field."""

    error_id = "crm-invalid"


class OutboxError(CrmError):
    """The outbox could not store or update a row."""

    error_id = "crm-outbox-error"
