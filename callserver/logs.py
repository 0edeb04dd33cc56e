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


def _indent(text: str) -> str:
    """A traceback/stack: every line escaped and prefixed, so an exception message carrying
    untrusted text cannot start a line that looks like a record of its own."""
    return "\n".join("  | " + escape_control(line) for line in text.split("\n"))


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.getMessage())
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        # exc_text may be cached raw by another handler's formatter: render our own
        cached = record.exc_text
        if record.exc_info:
            record.exc_text = _indent(self.formatException(record.exc_info))
        elif cached:
            record.exc_text = _indent(cached)
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatStack(self, stack_info: str) -> str:
        return _indent(super().formatStack(stack_info))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
