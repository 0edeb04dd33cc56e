"""Logging set-up. Every record's message is rendered with control characters escaped, so a
caller ID or any Asterisk-supplied text can never forge a log line."""

from __future__ import annotations

import logging
import sys

_ESCAPES = {i: f"\\x{i:02x}" for i in range(32) if i not in (9,)}
_ESCAPES[10] = "\\n"
_ESCAPES[13] = "\\r"
_ESCAPES[127] = "\\x7f"


def escape_control(text: str) -> str:
    """Replace CR, LF and other control characters with visible escapes."""
    return text.translate(_ESCAPES)


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.getMessage())
        return super().formatMessage(record)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
