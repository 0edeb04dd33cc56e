"""Errors of the Asterisk adapters (AMI, FastAGI, ARI)."""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class AsteriskError(CallserverError):
    error_id = "asterisk-error"


class AmiError(AsteriskError):
    error_id = "ami-error"


class AmiProtocolError(AmiError):
    """The peer sent something that is not AMI."""

    error_id = "ami-protocol"


class AmiFrameTooLarge(AmiProtocolError):
    error_id = "ami-frame-too-large"


class AmiConnectionError(AmiError):
    """Connecting, reading or writing failed, or the connection is down."""

    error_id = "ami-connection"
    category = ErrorCategory.UNAVAILABLE


class AmiAuthError(AmiError):
    """Asterisk refused the login (wrong username or secret)."""

    error_id = "ami-auth"
    category = ErrorCategory.UNAVAILABLE


class AmiActionError(AmiError):
    """An action got ``Response: Error``; ``details['response']`` holds the message."""

    error_id = "ami-action"
    category = ErrorCategory.UPSTREAM_REJECTED


class AmiTimeout(AmiError):
    error_id = "ami-timeout"
    category = ErrorCategory.TIMEOUT


class AgiError(AsteriskError):
    error_id = "agi-error"


class AgiProtocolError(AgiError):
    error_id = "agi-protocol"


class AgiHangup(AgiError):
    """The channel hung up (``HANGUP`` or ``511``) or the connection closed."""

    error_id = "agi-hangup"


class AgiTimeout(AgiError):
    error_id = "agi-timeout"
    category = ErrorCategory.TIMEOUT


class AgiCommandError(AgiError):
    """Asterisk answered 510/520 to a command."""

    error_id = "agi-command"


class AgiCommandTooLong(AgiError):
    """A command line would not fit Asterisk's AGI read buffer; it was not sent."""

    error_id = "agi-command-too-long"


class AgiConcurrentCommand(AgiError):
    """A handler started a command while another of its session was in flight; it was not sent."""

    error_id = "agi-concurrent-command"


class AriError(AsteriskError):
    error_id = "ari-error"


class AriConnectionError(AriError):
    error_id = "ari-connection"
    category = ErrorCategory.UNAVAILABLE


class AriHttpError(AriError):
    """ARI answered with an HTTP error; ``details['status']`` and ``details['body']``."""

    error_id = "ari-http"
    category = ErrorCategory.UPSTREAM_REJECTED

    @property
    def status(self) -> int:
        """The HTTP status (e.g. 404, 401)."""
        return int(self.details.get("status", 0))

    @property
    def body(self) -> str:
        """The answer's body text (ARI sends ``{"message": "..."}``), possibly truncated."""
        return str(self.details.get("body", ""))


class AriTimeout(AriError):
    error_id = "ari-timeout"
    category = ErrorCategory.TIMEOUT
