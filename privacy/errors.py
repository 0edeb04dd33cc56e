"""Errors of the privacy package (one root, keyword-only constructors; the web middleware maps
the category to a status)."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class PrivacyError(CallserverError):
    """Root of every error the privacy package raises on purpose."""

    error_id = "privacy-error"


class PrivacyRequestInvalid(PrivacyError):
    """A privacy request is invalid; ``details['field']`` names the bad field."""

    error_id = "privacy-request-invalid"
    category = ErrorCategory.INVALID


class PrivacyStoreUnavailable(PrivacyError):
    """PostgreSQL could not be reached or refused the work; nothing was changed."""

    error_id = "privacy-store-unavailable"
    category = ErrorCategory.UNAVAILABLE
    public_message = "the database is unavailable; nothing was exported or erased, try again"
