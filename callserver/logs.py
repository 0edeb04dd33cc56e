"""Logging set-up an admin can use under stress.

* Every record's message (and traceback) is rendered with control characters escaped, so a
  caller ID or any Asterisk-supplied text can never forge a log line.
* Phone numbers are masked wherever they appear in the rendered text (``+7 916 123-45-67`` →
  ``***4567``), including inside library errors that quote a URL or a database row: a log line
  that forgot ``mask()`` still does not carry a patient's number (152-FZ).
* Config secrets (AMI secret, ARI password, API token, DSN passwords, a plugin's ``*secret*``,
  ``*password*``, ``*token*`` keys) are replaced by ``***`` if anything ever prints them.
* The same message template from the same place is written at most ``burst`` times per
  ``interval`` seconds; what is held back is reported once as ``… repeated K more times``.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any
from urllib.parse import urlsplit

from callserver.core.phone import mask

_ESCAPES = {i: f"\\x{i:02x}" for i in range(32) if i not in (9,)}
_ESCAPES[10] = "\\n"
_ESCAPES[13] = "\\r"
_ESCAPES[127] = "\\x7f"

_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d(?:[\s()\-]{0,2}\d){9,14}|[78](?:[\s()\-]{0,2}\d){10})(?!\d|\.\d)"
)
"""E.164 (``+`` and 10–15 digits) and Russian 11-digit numbers (7…/8…), separators allowed.
Not 10-digit epochs nor Asterisk uniqueids (``1733000000.12``)."""
_SECRET_KEY = re.compile(r"secret|password|passwd|token|hmac|api_key|apikey", re.IGNORECASE)
ALWAYS = {"always_log": True}
"""``log.warning(..., extra=ALWAYS)``: never held back by ``RepeatLimiter``."""
MIN_SECRET_LEN = 4
"""Shorter values are not redacted (replacing "ab" everywhere would ruin every line)."""


def escape_control(text: str) -> str:
    """Replace CR, LF and other control characters with visible escapes."""
    return text.translate(_ESCAPES)


def mask_phones(text: str) -> str:
    """Every phone-number-looking run of digits in ``text`` masked to its last 4 digits."""
    return _PHONE.sub(lambda m: mask(m.group(0)), text)


def config_secrets(config: Any) -> list[str]:
    """Secret values in a loaded ``Config``: fields and plugin keys named like a secret,
    the environment's ``CALLSERVER_*`` secrets, and passwords inside URLs/DSNs."""
    found: list[str] = []

    def visit(name: str, value: Any) -> None:
        if is_dataclass(value) and not isinstance(value, type):
            for f in fields(value):
                visit(f.name, getattr(value, f.name))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                visit(str(key), item)
        elif isinstance(value, str) and value:
            if _SECRET_KEY.search(name):
                found.append(value)
            elif "://" in value:
                try:
                    password = urlsplit(value).password
                except ValueError:
                    password = None
                if password:
                    found.append(password)

    visit("config", config)
    visit("sections", getattr(config, "sections", {}))
    env = getattr(config, "env", {})
    visit("env", {k: v for k, v in env.items() if k.startswith("CALLSERVER_")})
    return sorted({s for s in found if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)


class SafeFormatter(logging.Formatter):
    """Escapes control characters, masks phone numbers, redacts ``secrets``."""

    def __init__(self, fmt: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if len(s) >= MIN_SECRET_LEN]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return mask_phones(escape_control(text))

    def _indent(self, text: str) -> str:
        """A traceback/stack: every line scrubbed and prefixed, so an exception message
        carrying untrusted text cannot start a line that looks like a record of its own."""
        return "\n".join("  | " + self.scrub(line) for line in text.split("\n"))

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = self.scrub(record.getMessage())
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        # exc_text may be cached raw by another handler's formatter: render our own
        cached = record.exc_text
        if record.exc_info:
            record.exc_text = self._indent(self.formatException(record.exc_info))
        elif cached:
            record.exc_text = self._indent(cached)
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatStack(self, stack_info: str) -> str:
        return self._indent(super().formatStack(stack_info))


@dataclass
class _Window:
    start: float
    passed: int = 1
    held: int = 0
    last: logging.LogRecord | None = None


class RepeatLimiter(logging.Filter):
    """A handler filter: the same template (logger, level, source line, message format) passes
    at most ``burst`` times per ``interval`` seconds (monotonic clock). When a window with
    held-back records ends, one summary record goes to ``emit`` at the next record logged (or
    at ``flush()``): ``<last message> [repeated 37 more times in 60 s]``. At most ``max_keys``
    templates are tracked (the oldest are summarised and forgotten first). A record logged with
    ``extra=ALWAYS`` is never held back (an incident id a client was given must be findable).
    Thread-safe."""

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], Any],
        *,
        burst: int = 5,
        interval: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._emit, self._burst, self._interval = emit, burst, interval
        self._max_keys, self._clock = max_keys, clock
        self._windows: dict[tuple[object, ...], _Window] = {}  # oldest window first
        self._lock = threading.Lock()
        self.held = 0
        """Records held back since start (all templates)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeat_summary", False) or getattr(record, "always_log", False):
            return True
        key = (record.name, record.levelno, record.pathname, record.lineno, str(record.msg))
        with self._lock:
            now = self._clock()
            due = self._expire(now)
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(now)
                allowed = True
            elif window.passed < self._burst:
                window.passed += 1
                allowed = True
            else:
                window.held += 1
                window.last = record
                self.held += 1
                allowed = False
        for summary in due:
            self._emit(summary)
        return allowed

    def flush(self) -> None:
        """Emit the summaries of every window with held-back records now."""
        with self._lock:
            due = [s for w in self._windows.values() if (s := self._summary(w)) is not None]
            self._windows.clear()
        for summary in due:
            self._emit(summary)

    def _expire(self, now: float) -> list[logging.LogRecord]:
        due: list[logging.LogRecord] = []
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if now - window.start < self._interval and len(self._windows) < self._max_keys:
                break
            del self._windows[key]
            if (summary := self._summary(window)) is not None:
                due.append(summary)
        return due

    def _summary(self, window: _Window) -> logging.LogRecord | None:
        last = window.last
        if last is None or window.held == 0:
            return None
        try:
            text = last.getMessage()
        except Exception:  # a bad format never stops logging: show the template
            text = str(last.msg)
        summary = logging.LogRecord(
            last.name, last.levelno, last.pathname, last.lineno,
            "%s [repeated %d more times in %.0f s]", (text, window.held, self._interval), None,
        )  # fmt: skip
        summary.__dict__["repeat_summary"] = True
        return summary


class _LimitedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr handler whose ``close`` reports what its limiter still holds back."""

    limiter: RepeatLimiter | None = None

    def close(self) -> None:
        if self.limiter is not None:
            self.limiter.flush()
        super().close()


def setup_logging(
    level: str = "INFO",
    *,
    secrets: Iterable[str] = (),
    burst: int = 5,
    interval: float = 60.0,
) -> RepeatLimiter:
    """Log to stderr through ``SafeFormatter`` and a ``RepeatLimiter`` (``burst`` records per
    template per ``interval`` s). Call again with ``secrets=config_secrets(config)`` once the
    config is loaded. Returns the limiter (its ``held`` counts what was held back)."""
    handler = _LimitedHandler(sys.stderr)
    handler.setFormatter(
        SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets=secrets)
    )
    limiter = RepeatLimiter(handler.handle, burst=burst, interval=interval)
    handler.limiter = limiter
    handler.addFilter(limiter)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, _LimitedHandler):  # ours from an earlier call; others left alone
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return limiter
