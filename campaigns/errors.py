"""campaigns errors: one root, keyword-only constructors, categories in domain words."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class CampaignError(CallserverError):
    """Root of every error the campaigns package raises on purpose."""

    error_id = "campaign-error"


class CampaignInvalid(CampaignError):
    """A campaign's settings, a CSV row or a request body is wrong; ``details['field']``."""

    error_id = "campaign-invalid"
    category = ErrorCategory.INVALID


class CampaignNotFound(CampaignError):
    error_id = "campaign-not-found"
    category = ErrorCategory.NOT_FOUND


class CampaignConflict(CampaignError):
    """The campaign is not in a state that allows the change (e.g. resuming a finished one)."""

    error_id = "campaign-conflict"
    category = ErrorCategory.CONFLICT
