"""pbxsim AMI event builders against Asterisk 22's tables (no sockets)."""

from __future__ import annotations

import dataclasses

import pytest

from pbxsim import ami_events as ev
from pbxsim.app import Pbx, PbxOptions
from pbxsim.model import Channel
from pbxsim.scenario import load


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


def test_queue_member_events_show_the_queues_ringinuse() -> None:
    """Bug: QueueMemberStatus/Added/Removed/Pause said ``Ringinuse: 0`` even for a
    ``ringinuse=yes`` queue (golden ami-local-member-cyrillic.txt: ``Ringinuse: 1``)."""
    sc = dataclasses.replace(load("local-member"), calls=())
    queues = Pbx(sc, PbxOptions(ami_port=0)).engine.queues
    rings_in_use = {name: q.ringinuse for name, q in queues.items()}
    assert rings_in_use == {"labq": True}  # lab queues.conf: [labq] ringinuse = yes
    for name, q in queues.items():
        for m in q.members:
            assert f"\r\nRinginuse: {int(rings_in_use[name])}\r\n" in m.block(name)
