"""Errors of pbxsim's ARI server; ``server`` maps each class to Asterisk's HTTP status."""

from __future__ import annotations

from pbxsim.wire import PbxsimError


class AriError(PbxsimError):
    """Root of ARI request errors; ``message`` is what Asterisk puts in ``{"message": …}``."""


class NotFound(AriError):
    """The addressed resource (channel, bridge, playback, variable) does not exist (404)."""


class BadRequest(AriError):
    """A parameter is missing or malformed, or the JSON body does not parse (400)."""


class Conflict(AriError):
    """The resource exists but is in the wrong state, e.g. not in Stasis (409)."""


class Unprocessable(AriError):
    """A resource named in the parameters is in the wrong state (422)."""
