"""Errors of the recognition package: one root (``RecognitionError``), keyword-only constructors.

A backend that cannot be had (``ModelNotFound``, ``BackendUnavailable``) is the signal for the
dialog to fall back to a DTMF-only menu; ``RecognitionFailed`` is a decoder error mid-stream.
"""

from __future__ import annotations

from callserver.errors import CallserverError


class RecognitionError(CallserverError):
    """Root of every error the recognition package raises on purpose."""

    error_id = "recognition-error"


class AudioFormatError(RecognitionError):
    """Audio of a codec, rate or frame size we do not handle (``details['field']``)."""

    error_id = "recognition-audio-format"


class BackendUnavailable(RecognitionError):
    """The backend's library is missing or failed to start (``details['backend']``)."""

    error_id = "recognition-backend-unavailable"


class ModelNotFound(BackendUnavailable):
    """The configured model directory is missing or incomplete (``details['path']``)."""

    error_id = "recognition-model-not-found"


class RecognitionFailed(RecognitionError):
    """The decoder raised while processing a stream (``details['backend']``)."""

    error_id = "recognition-failed"
