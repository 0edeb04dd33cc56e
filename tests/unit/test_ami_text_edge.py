"""The AMI → model edge cleans Asterisk-supplied text (issue 9, defect 5): NUL removed, lone
surrogates → U+FFFD, caller names and numbers cut to their limits, so no value PostgreSQL refuses
ever reaches a snapshot (and from there the calls table, Redis or the CRM outbox)."""

from __future__ import annotations

from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.ami_translate import MAX_CALLER_NAME, MAX_CALLER_NUM, AmiTranslator
from callserver.core.bus import EventBus
from callserver.core.events import CallEnded, DomainEvent
from callserver.core.model import LiveModel


def test_hostile_caller_id_and_cause_are_cleaned_and_bounded() -> None:
    events: list[DomainEvent] = []
    bus = EventBus()
    bus.subscribe(events.append)
    translator = AmiTranslator(LiveModel(bus), clock=lambda: 1.8e9)
    base = {"Uniqueid": "u1", "Linkedid": "u1", "Channel": "PJSIP/trunk-1", "Timestamp": "1.8e9"}
    name = "Ан\x00на \ud83d" + "я" * 9999
    caller = {"CallerIDNum": "+7916\x00" + "1" * 500, "CallerIDName": name}
    translator.handle(AmiMessage("event", "Newchannel", {**base, **caller}))
    translator.handle(AmiMessage("event", "Hangup", {**base, "Cause-txt": "\x00\udcff" * 3000}))
    assert translator.bad == 0
    (ended,) = [e for e in events if isinstance(e, CallEnded)]
    call = ended.call
    assert call.caller == ("+7916" + "1" * 500)[:MAX_CALLER_NUM]
    assert call.caller_name == ("Анна \ufffd" + "я" * 9999)[:MAX_CALLER_NAME]
    assert ended.cause == call.hangup_cause == "\ufffd" * 256
    for value in (call.caller, call.caller_name, call.hangup_cause):
        value.encode("utf-8")
