"""pbxsim AMI event builders against Asterisk 22's tables (no sockets)."""

from __future__ import annotations

import pytest

from pbxsim import ami_events as ev
from pbxsim.model import Channel


@pytest.mark.parametrize(
    ("cause", "text"),
    [
        (0, "Unknown"),
        (16, "Normal Clearing"),
        (17, "User busy"),
        (18, "No user responding"),
        (19, "User alerting, no answer"),
        (21, "Call Rejected"),
        (34, "Circuit/channel congestion"),
    ],
)
def test_hangup_cause_txt_is_asterisks(cause: int, text: str) -> None:
    """Bug: cause 19 (AST_CAUSE_NO_ANSWER, an unanswered originate) said "No user
    responding", which is cause 18's text in Asterisk's causes table."""
    ch = Channel("PJSIP/trunk-00000001", "1.1", "1.1", "from-trunk", "s")
    raw = ev.hangup(ch, cause).decode()
    assert f"\r\nCause: {cause}\r\nCause-txt: {text}\r\n" in raw
