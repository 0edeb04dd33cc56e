"""Errors of the operator desk (one root, categories in domain words)."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class DeskError(CallserverError):
    error_id = "desk-error"


class DeskInvalid(DeskError):
    """A field of the request is wrong; ``details['field']`` names it."""

    error_id = "desk-invalid"
    category = ErrorCategory.INVALID


class LoginFailed(DeskError):
    error_id = "desk-login-failed"
    category = ErrorCategory.UNAUTHORIZED


class DeskForbidden(DeskError):
    error_id = "desk-forbidden"
    category = ErrorCategory.FORBIDDEN


class DeskNotFound(DeskError):
    error_id = "desk-not-found"
    category = ErrorCategory.NOT_FOUND


class DeskConflict(DeskError):
    error_id = "desk-conflict"
    category = ErrorCategory.CONFLICT


class DialerUnavailable(DeskError):
    error_id = "desk-dialer-unavailable"
    category = ErrorCategory.UNAVAILABLE
    public_message = "click-to-call is not available: no dialer is enabled on this server"


class AsteriskRefused(DeskError):
    """Asterisk refused or did not answer an action (QueuePause)."""

    error_id = "desk-asterisk-refused"
    category = ErrorCategory.UPSTREAM_REJECTED
