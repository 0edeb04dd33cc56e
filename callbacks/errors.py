"""Errors of the callbacks domain (one root; the web middleware maps categories)."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class CallbacksError(CallserverError):
    error_id = "callbacks-error"


class JobNotFound(CallbacksError):
    error_id = "callback-job-not-found"
    category = ErrorCategory.NOT_FOUND


class JobConflict(CallbacksError):
    """The job is someone else's, already finished, or being dialled."""

    error_id = "callback-job-conflict"
    category = ErrorCategory.CONFLICT


class InvalidRequest(CallbacksError):
    """A bad field in a request body or query (``details['field']`` names it)."""

    error_id = "callback-request-invalid"
    category = ErrorCategory.INVALID


class FormForbidden(CallbacksError):
    error_id = "callback-form-forbidden"
    category = ErrorCategory.FORBIDDEN


class TooManyRequests(CallbacksError):
    error_id = "callback-rate-limited"
    category = ErrorCategory.RATE_LIMITED


class StoreUnavailable(CallbacksError):
    error_id = "callbacks-store-unavailable"
    category = ErrorCategory.UNAVAILABLE
    public_message = "callback storage is unavailable; try again later"
