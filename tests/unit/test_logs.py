"""callserver.logs: no untrusted text can forge a log line."""

from __future__ import annotations

import io
import logging

from callserver.logs import SafeFormatter

FORGED = "2026-11-23 12:00:00,000 INFO callserver: operator 101 logged in"


def _render(emit: object) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("test-safe-formatter")
    log.addHandler(handler)
    log.propagate = False
    try:
        assert callable(emit)
        emit(log)
    finally:
        log.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_message_arguments_are_escaped() -> None:
    lines = _render(lambda log: log.warning("caller name %s", "x\r\n" + FORGED))
    assert len(lines) == 1 and "\\r\\n" in lines[0]


def test_an_exception_message_cannot_forge_a_line() -> None:
    """Bug: only the message was escaped; a traceback's exception text (e.g. carrying a caller
    name or an HTTP path) went out raw, so its line breaks started lines of their own."""

    def emit(log: logging.Logger) -> None:
        try:
            raise ValueError("bad value x\r\n" + FORGED)
        except ValueError:
            log.exception("handler failed")

    lines = _render(emit)
    assert not any(line.startswith(FORGED[:10]) for line in lines[1:])
    assert "\r" not in "".join(lines)
    assert any("Traceback" in line for line in lines)
