"""Errors the voice bot raises on purpose."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class IvrError(CallserverError):
    """Root of the ivr package's errors."""

    error_id = "ivr-error"


class NoRtpPort(IvrError):
    """Every UDP port of ``[ivr] rtp_port_min..rtp_port_max`` is taken (``details['range']``)."""

    error_id = "ivr-no-rtp-port"
    category = ErrorCategory.UNAVAILABLE


class BotBusy(IvrError):
    """``[ivr] max_calls`` bot calls are running: the call goes back to its queue."""

    error_id = "ivr-busy"
    category = ErrorCategory.RATE_LIMITED


class PromptBuildError(IvrError):
    """espeak-ng or sox failed while building the prompt set (``details['prompt']``)."""

    error_id = "ivr-prompt-build"
